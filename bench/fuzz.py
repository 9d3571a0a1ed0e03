"""Fuzz the whole HTTP API in-process and count what comes back.

    .venv/bin/python bench/fuzz.py [--requests 10000] [--seed 1] [--schemathesis-share 0.6] [--show 3]

It starts a private redis-server (a free port, a temp dir, nothing saved), migrates a SQLite
database in that temp dir, builds the app with create_app() and sends the requests through the
WSGI test client:
  * schemathesis cases generated from GET /openapi.json, positive and negative, for every operation;
  * hand-made malformed requests: invalid JSON, invalid UTF-8, wrong or missing content type,
    bodies over the size limit (100 KB), control characters, very long single tokens, unknown
    fields and wrong types, deeply nested JSON, odd methods, odd job ids and query values.
Every response is checked: no 5xx, and every error (4xx or 5xx) is {"error": {"code", "message"}}.
It prints a table (requests by source and by status) and the first failing requests of each kind;
the exit status is 1 when a 5xx or an error without code and message was seen.
"""

import argparse
import collections
import json
import logging
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

KNOWN_QUESTION = "How do I reset my password?"
VALID_QUESTIONS = [KNOWN_QUESTION, "hello", "hi there", "What is the capital of France?",
                   "how long do refunds take", "¿Dónde está la biblioteca?", "数据库是什么", "2 + 2 = ?"]
PATHS = ["/v1/ask", "/v1/jobs/x", "/v1/stats", "/dashboard", "/metrics", "/healthz", "/readyz", "/openapi.json"]
CONTROL_CHARS = [chr(c) for c in range(0x20) if chr(c) not in "\t\n\r"] + ["\x7f", "\x85", "\x9f"]


# --- environment -------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_redis(tmp: Path) -> tuple[subprocess.Popen, str]:
    """Start a throw-away redis-server; return (process, base URL)."""
    import redis

    exe = shutil.which("redis-server")
    if exe is None:
        sys.exit("bench/fuzz.py needs redis-server on PATH (it starts a private one)")
    port = free_port()
    proc = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", str(tmp)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    client = redis.Redis(port=port)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                sys.exit("redis-server did not start")
            time.sleep(0.05)
    client.close()
    return proc, f"redis://127.0.0.1:{port}"


def build_app(tmp: Path, redis_base: str):
    from precache.db import upgrade
    from precache.normalize import normalize, question_hash
    from web import create_app

    url = f"sqlite:///{tmp / 'precache.db'}"
    upgrade(url)
    app = create_app({"database_url": url, "redis_url": f"{redis_base}/0", "broker_url": f"{redis_base}/1",
                      "var_dir": tmp / "var", "max_wait_ms": 50, "stream_max_s": 1})
    store = app.extensions["precache"].store  # one stored answer, so the exact tier is hit too
    normalized = normalize(KNOWN_QUESTION)
    qid = store.ensure_question(KNOWN_QUESTION, normalized, question_hash(normalized))
    store.save_answer(qid, "Open Settings, choose Security, then Reset password.", model="fuzz", quality=0.9)
    return app


class ErrorLog(logging.Handler):
    """Keeps the logged errors (500 tracebacks) instead of printing thousands of them."""

    def __init__(self):
        super().__init__(logging.ERROR)
        self.records: list[str] = []

    def emit(self, record):
        text = record.getMessage()
        if record.exc_info:
            text += "\n" + "".join(traceback.format_exception(*record.exc_info))
        self.records.append(text)


# --- the checks --------------------------------------------------------------------------------

class Tally:
    def __init__(self, show: int):
        self.show = show
        self.by_source: collections.Counter = collections.Counter()
        self.by_status: collections.Counter = collections.Counter()
        self.by_status_source = collections.defaultdict(collections.Counter)
        self.server_errors = 0
        self.without_message = 0
        self.examples: dict[str, list[str]] = collections.defaultdict(list)
        self.crashes = 0  # the client itself raised (not an HTTP answer)

    @property
    def sent(self) -> int:
        return sum(self.by_source.values())

    def record(self, source: str, request: str, status: int, body: bytes) -> None:
        self.by_source[source] += 1
        self.by_status[status] += 1
        self.by_status_source[status][source] += 1
        if status >= 500:
            self.server_errors += 1
            self._example(f"{status}", request, body)
        if status >= 400 and not has_message(body):
            self.without_message += 1
            self._example(f"{status} without error.code/message", request, body)

    def crash(self, source: str, request: str, exc: BaseException) -> None:
        self.by_source[source] += 1
        self.crashes += 1
        self._example("client exception", request, repr(exc).encode())

    def _example(self, kind: str, request: str, body: bytes) -> None:
        if len(self.examples[kind]) < self.show:
            self.examples[kind].append(f"{request}\n      -> {body[:300]!r}")


def has_message(body: bytes) -> bool:
    try:
        error = json.loads(body)["error"]
        return all(isinstance(error[k], str) and error[k] for k in ("code", "message"))
    except (ValueError, KeyError, TypeError):
        return False


def describe(method: str, path: str, headers: dict | None, data) -> str:
    shown = repr(data)
    if len(shown) > 200:
        shown = f"{shown[:160]}... ({len(data)} {'bytes' if isinstance(data, bytes) else 'chars'})"
    return f"{method} {path} headers={headers or {}} body={shown}"


# --- schemathesis ------------------------------------------------------------------------------

def send_cases(operation, mode, count: int, seed: int, tally: Tally) -> None:
    """Send up to `count` schemathesis cases of one operation and generation mode."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hypothesis_seed

    sent_before = tally.by_source["schemathesis"]

    @hypothesis_seed(seed)
    @settings(max_examples=count, database=None, deadline=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode))
    def send(case):
        if tally.by_source["schemathesis"] - sent_before >= count:
            return
        request = (f"[schemathesis {mode.value}] {case.method} {case.formatted_path} query={case.query} "
                   f"headers={case.headers} body={str(case.body)[:160]!r}")
        try:
            response = case.call()
        except Exception as exc:  # noqa: BLE001 - a transport failure is a finding, not a stop
            tally.crash("schemathesis", request, exc)
            return
        tally.record("schemathesis", request, response.status_code, response.content)

    send()


def run_schemathesis(app, tally: Tally, budget: int, seed: int) -> None:
    """Spend up to `budget` requests on schemathesis cases, shared across operations and modes.

    Operations with few possible inputs (GET /healthz) run out of new cases at once; the others
    get further rounds, each with another seed, until the budget is spent.
    """
    import schemathesis
    from hypothesis.errors import Unsatisfiable

    schema = schemathesis.openapi.from_wsgi("/openapi.json", app,
                                            config=schemathesis.Config.from_dict({"seed": seed}))
    modes = (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE)
    runs = [(result.ok(), mode) for result in schema.get_all_operations() for mode in modes]
    for round_ in range(1000):
        exhausted = []
        for index, (operation, mode) in enumerate(runs):
            left = budget - tally.by_source["schemathesis"]
            per_run = left // (len(runs) - index)
            if per_run < 1:
                continue
            sent_before = tally.by_source["schemathesis"]
            try:
                send_cases(operation, mode, per_run, seed + round_, tally)
            except Unsatisfiable:  # e.g. no negative case exists for an operation without inputs
                pass
            if tally.by_source["schemathesis"] - sent_before < per_run:
                exhausted.append((operation, mode))
        runs = [run for run in runs if run not in exhausted]
        if not runs or tally.by_source["schemathesis"] >= budget:
            return


# --- hand-made malformed requests --------------------------------------------------------------

def ask_body(rng: random.Random, **fields) -> dict:
    body = {"question": rng.choice(VALID_QUESTIONS)}
    if rng.random() < 0.5:
        body["wait_ms"] = rng.choice([0, 1, 10, 50])
    if rng.random() < 0.3:
        body["detail"] = rng.choice(["quick", "detailed"])
    body.update(fields)
    return body


def word(rng: random.Random, n: int, alphabet: str = "abcdefghijklmnopqrstuvwxyz0123456789") -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


JSON = {"Content-Type": "application/json"}


def malformed(rng: random.Random):
    """Yield (family, method, path, headers, data) forever, cycling over the families."""
    families = [valid_ask, invalid_json, invalid_utf8, wrong_content_type, huge_body, control_chars,
                long_token, unknown_fields, wrong_types, deep_nesting, odd_methods, odd_job_ids,
                odd_stats_windows, odd_headers]
    while True:
        for family in families:
            method, path, headers, data = family(rng)
            yield family.__name__, method, path, headers, data


def valid_ask(rng):
    return "POST", "/v1/ask", JSON, json.dumps(ask_body(rng))


def invalid_json(rng):
    text = json.dumps(ask_body(rng))
    data = rng.choice([
        text[: rng.randrange(len(text))],                       # truncated
        text + rng.choice(["}", "]", ",", "x", " {}", "\x00"]),  # trailing garbage
        text.replace('"', "'"),                                 # single quotes
        text[:-1] + ",}",                                       # trailing comma
        "", " ", "null", "[]", "123", '"question"', "true", "{", "}", "{}{}", "NaN",
        '{"question": "hi", "wait_ms": ' + "9" * rng.randrange(4300, 6000) + "}",  # int too long to parse
    ])
    return "POST", "/v1/ask", JSON, data


def invalid_utf8(rng):
    bad = rng.choice([b"\xff", b"\xfe\xff", b"\xc3\x28", b"\xa0\xa1", b"\xed\xa0\x80", b"\xc0\xaf",
                      b"\xf8\x88\x80\x80\x80", b"\xe2\x82", b"\x80"])
    question = word(rng, rng.randrange(1, 20)).encode()
    at = rng.randrange(len(question) + 1)
    data = b'{"question": "' + question[:at] + bad + question[at:] + b'"}'
    return "POST", "/v1/ask", JSON, data


def wrong_content_type(rng):
    ctype = rng.choice([None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data",
                        "application/xml", "text/json", "application/json-patch", "*/*", "",
                        "application/json; charset=latin-1", "application/json; charset=utf-16",
                        "APPLICATION/JSON", "application/json, text/plain", "application/vnd.api+json"])
    headers = {} if ctype is None else {"Content-Type": ctype}
    data = rng.choice([json.dumps(ask_body(rng)), "question=hello", "<q>hello</q>",
                       json.dumps(ask_body(rng)).encode("utf-16")])
    return "POST", "/v1/ask", headers, data


def huge_body(rng):
    size = rng.choice([100_000, 65_537, 70_000, 1_000_000, 60_000])  # the default limit is 65,536 bytes
    if rng.random() < 0.5:
        data = json.dumps({"question": word(rng, 1, "ab") * size})
    else:
        data = json.dumps({"question": "hello", "padding": "x" * size})
    return "POST", "/v1/ask", JSON, data


def control_chars(rng):
    question = word(rng, rng.randrange(1, 40), "abc def ")
    at = rng.randrange(len(question) + 1)
    char = rng.choice(CONTROL_CHARS + ["\ud800", "\udfff", "\u200b", "\u202e", "\ufeff", "\u2028"])
    data = json.dumps({"question": question[:at] + char + question[at:]})  # \uXXXX escapes, valid JSON
    if rng.random() < 0.3:  # or the raw byte, which JSON forbids inside strings
        data = data.replace(json.dumps(char)[1:-1], char if char < "\ud800" or char > "\udfff" else "x")
    return "POST", "/v1/ask", JSON, data


def long_token(rng):
    n = rng.choice([1999, 2000, 2001, rng.randrange(1, 2000), rng.randrange(2001, 20_000)])
    alphabet = rng.choice(["a", "abcdefghijklmnopqrstuvwxyz", "é", "😀", "数据库", "0123456789", "-_."])
    return "POST", "/v1/ask", JSON, json.dumps({"question": word(rng, n, alphabet)}, ensure_ascii=rng.random() < 0.5)


def unknown_fields(rng):
    extra = rng.choice([{"foo": 1}, {"Question": "hi"}, {"question ": "x"}, {"": ""}, {"wait": 5},
                        {"detail": "quick", "stream": True}, {"__proto__": {}}, {word(rng, 300): None}])
    return "POST", "/v1/ask", JSON, json.dumps(ask_body(rng) | extra)


def wrong_types(rng):
    field, value = rng.choice([
        ("question", None), ("question", 1), ("question", ["hi"]), ("question", {"q": "hi"}), ("question", True),
        ("question", ""), ("question", "   \t\n"), ("question", "?!..."), ("question", "\u3000"),
        ("wait_ms", -1), ("wait_ms", 51), ("wait_ms", 10**30), ("wait_ms", 1.5), ("wait_ms", 10.0),
        ("wait_ms", "10"), ("wait_ms", True), ("wait_ms", None), ("wait_ms", []),
        ("detail", "fast"), ("detail", None), ("detail", 1), ("detail", "QUICK"), ("detail", ""),
    ])
    body = ask_body(rng)
    body[field] = value
    if rng.random() < 0.1:
        body.pop("question")
    return "POST", "/v1/ask", JSON, json.dumps(body)


def deep_nesting(rng):
    depth = rng.choice([100, 1000, 5000, 20_000, 32_000])
    data = rng.choice(["[" * depth + "]" * depth, '{"a":' * depth + "1" + "}" * depth,
                       '{"question": ' + "[" * depth + "]" * depth + "}"])
    return "POST", "/v1/ask", JSON, data


def odd_methods(rng):
    method = rng.choice(["GET", "PUT", "PATCH", "DELETE", "TRACE", "OPTIONS", "BREW", "POST"])
    path = rng.choice(PATHS + ["/", "/v1", "/v1/", "/v1/ask/", "/v1/jobs", "/v1/jobs/", "/nope",
                               "/static/../web/__init__.py", "/static/chart.umd.min.js", "//v1//ask",
                               "/v1/ASK", "/%2e%2e/etc/passwd"])
    return method, path, JSON if method in ("POST", "PUT", "PATCH") else None, \
        json.dumps(ask_body(rng)) if method in ("POST", "PUT", "PATCH") else None


def odd_job_ids(rng):
    job_id = rng.choice([
        word(rng, rng.randrange(1, 64)), word(rng, rng.randrange(65, 3000)), "%00", "%FF%FE", "%F0%9F%98%80",
        "..", "%2F", "%2e%2e%2f", "00000000-0000-0000-0000-000000000000", "%20", "a%0Ab", "\u00e9",
        "' OR 1=1 --", "*", "?", "%3F", "%25",
    ])
    return "GET", f"/v1/jobs/{job_id}", None, None


def odd_stats_windows(rng):
    value = rng.choice(["", "0", "59", "60", "3600", "604800", "604801", "-60", "+60", "60.0", "1e3", " 60",
                        "60 ", "%20", "%FF", "٣٦٠٠", "99999999999999999999999", "0x3c", "3600&window_s=1",
                        str(rng.randrange(-10**9, 10**9)), word(rng, rng.randrange(1, 50))])
    return "GET", f"/v1/stats?window_s={value}", None, None


def odd_headers(rng):
    headers = rng.choice([
        {"X-Request-ID": word(rng, 5000)}, {"X-Request-ID": "a b\tc"}, {"X-Request-ID": "é"},
        {"Accept": "application/xml"}, {"Content-Length": "5"}, {"Content-Type": "application/json",
                                                               "Content-Encoding": "gzip"},
        {"Transfer-Encoding": "chunked", "Content-Type": "application/json"}, {"Expect": "100-continue"},
    ])
    method, path = rng.choice([("POST", "/v1/ask"), ("GET", "/healthz"), ("GET", "/v1/stats")])
    return method, path, headers, json.dumps(ask_body(rng)) if method == "POST" else None


def run_malformed(app, tally: Tally, count: int, seed: int, family_counts: collections.Counter) -> None:
    client = app.test_client()
    rng = random.Random(seed)
    for _, (family, method, path, headers, data) in zip(range(count), malformed(rng)):
        family_counts[family] += 1
        request = describe(method, path, headers, data)
        try:
            response = client.open(path, method=method, headers=headers, data=data)
        except Exception as exc:  # noqa: BLE001 - recorded and shown
            tally.crash("malformed", request, exc)
            continue
        tally.record("malformed", request, response.status_code, response.get_data())


# --- main --------------------------------------------------------------------------------------

def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=10_000, help="requests to send in all")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--schemathesis-share", type=float, default=0.6,
                        help="share of the requests spent on schemathesis cases; the rest are hand-made")
    parser.add_argument("--show", type=int, default=3, help="failing requests to show per kind")
    args = parser.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="precache-fuzz-"))
    redis_proc, redis_base = start_redis(tmp)
    errors = ErrorLog()
    try:
        app = build_app(tmp, redis_base)
        root = logging.getLogger()  # keep the 500 tracebacks, do not print one per request
        root.handlers[:] = [errors]
        root.setLevel(logging.ERROR)

        tally = Tally(args.show)
        families: collections.Counter = collections.Counter()
        started = time.perf_counter()
        run_schemathesis(app, tally, int(args.requests * args.schemathesis_share), args.seed)
        run_malformed(app, tally, args.requests - tally.sent, args.seed, families)
        elapsed = time.perf_counter() - started
        app.extensions["precache"].close()
    finally:
        redis_proc.terminate()
        redis_proc.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)

    report(tally, families, elapsed, args, errors)
    return 1 if tally.server_errors or tally.without_message or tally.crashes else 0


def report(tally: Tally, families, elapsed: float, args, errors: ErrorLog) -> None:
    print(f"precache fuzz: {tally.sent} requests in {elapsed:.1f} s (seed {args.seed})\n")
    print(f"{'source':<34}{'requests':>10}")
    print(f"{'schemathesis (from /openapi.json)':<34}{tally.by_source['schemathesis']:>10}")
    for family, n in sorted(families.items()):
        print(f"{'  malformed: ' + family:<34}{n:>10}")
    print()
    print(f"{'status':<10}{'count':>8}{'schemathesis':>14}{'malformed':>11}")
    for status in sorted(tally.by_status):
        split = tally.by_status_source[status]
        print(f"{status:<10}{tally.by_status[status]:>8}{split['schemathesis']:>14}{split['malformed']:>11}")
    print()
    print(f"{'requests sent':<38}{tally.sent:>8}")
    print(f"{'5xx responses':<38}{tally.server_errors:>8}")
    print(f"{'4xx/5xx without error.code/message':<38}{tally.without_message:>8}")
    print(f"{'client exceptions (no response)':<38}{tally.crashes:>8}")
    for kind, examples in tally.examples.items():
        print(f"\nfirst {kind}:")
        for example in examples:
            print(f"  {example}")
    if errors.records:
        distinct = {record.strip().splitlines()[-1]: record for record in errors.records}
        print(f"\n{len(errors.records)} errors logged by the app, {len(distinct)} distinct; first of each:")
        for record in distinct.values():
            print("  " + record.strip().replace("\n", "\n  ")[-2000:])


if __name__ == "__main__":
    sys.exit(main())
