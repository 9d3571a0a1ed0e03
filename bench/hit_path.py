"""Benchmark the exact-hit path of POST /v1/ask against a bare Flask+Redis app, both under the same gunicorn worker
class (gevent, as `precache web` runs it, or gthread)."""

import argparse
import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.bare_redis_app import KEY as BARE_KEY  # noqa: E402

QUESTION = "How do I reset my password?"
ANSWER = "Open Settings, choose Security, then Reset password."


def seed(cfg: dict) -> None:
    """Migrate the database, store one exact answer, and set the baseline's key."""
    from precache.config import load_settings
    from precache.context import Context
    from precache.db import upgrade
    from precache.normalize import normalize, question_hash

    upgrade(cfg["database_url"])
    ctx = Context(load_settings(**cfg))
    n = normalize(QUESTION)
    qid = ctx.store.ensure_question(QUESTION, n, question_hash(n))
    ctx.store.save_answer(qid, ANSWER, model="bench", quality=0.9)
    ctx.close()
    redis.Redis.from_url(cfg["redis_url"]).set(BARE_KEY, ANSWER)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(spec: str, args, env: dict, log_path: Path) -> tuple[subprocess.Popen, int]:
    """Start gunicorn for `spec` on a free port and wait for a 200 from /v1/ask."""
    port = free_port()
    worker = (["--worker-class", "gevent", "--worker-connections", "1000"] if args.worker_class == "gevent" else
              ["--worker-class", "gthread", "--threads", str(args.threads)])
    cmd = [sys.executable, "-m", "gunicorn", *worker, "--workers", str(args.workers), "--bind", f"127.0.0.1:{port}",
           "--log-level", "warning", spec]
    return launch(cmd, env, log_path, port), port


def launch(cmd: list[str], env: dict, log_path: Path, port: int, timeout: float = 60) -> subprocess.Popen:
    """Start a server process group and wait until it answers the cached question on `port`."""
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=open(log_path, "wb"), stderr=subprocess.STDOUT,
                            start_new_session=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if requests.post(f"http://127.0.0.1:{port}/v1/ask", json={"question": QUESTION}, timeout=2).ok:
                return proc
        except requests.RequestException:
            pass
        time.sleep(0.2)
    stop(proc)
    raise RuntimeError(f"{' '.join(cmd[-3:])} not ready; log:\n{log_path.read_text()[-3000:]}")


def stop(proc: subprocess.Popen) -> None:
    """Terminate one gunicorn process group that this script started."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


class Conn:
    """One keep-alive HTTP/1.1 connection that sends the same POST again and again."""

    def __init__(self, port: int, question: str = QUESTION):
        self.port, self.writer = port, None
        self.ask(question)

    def ask(self, question: str) -> "Conn":
        """Make `question` the one the next posts send."""
        body = json.dumps({"question": question}).encode()
        self.request = (f"POST /v1/ask HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\nContent-Type: application/json"
                        f"\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body
        return self

    async def post(self) -> tuple[int, bytes]:
        for attempt in (0, 1):  # reconnect once if the server closed an idle keep-alive connection
            if self.writer is None:
                self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
            try:
                self.writer.write(self.request)
                head = (await self.reader.readuntil(b"\r\n\r\n")).lower()
                break
            except (ConnectionError, asyncio.IncompleteReadError):
                self.close()
                if attempt:
                    raise
        body = await self.reader.readexactly(int(re.search(rb"content-length: *(\d+)", head).group(1)))
        if b"connection: close" in head:
            self.close()
        return int(head.split(b" ", 2)[1]), body

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


class Stats:
    """Latencies and failures of requests that began after the warm-up."""

    def __init__(self, real: bool):
        self.real, self.lat, self.fails = real, [], []
        self.answered = 0  # every request answered, warm-up included

    async def one(self, conn: Conn, t0: float, counted: bool) -> None:
        try:
            status, body = await conn.post()
            self.answered += 1
            ok = status == 200 and (not self.real or json.loads(body).get("source") == "exact")
            why = None if ok else f"{status} {body[:200]!r}"
        except Exception as exc:  # every failure is counted and shown, never hidden
            conn.close()
            why = repr(exc)
        if counted:
            self.lat.append(time.perf_counter() - t0)
            if why:
                self.fails.append(why)


async def closed_loop(port: int, stats: Stats, clients: int, warmup: float, duration: float) -> None:
    """N clients, each sending its next request as soon as the last one answered."""
    t_count = time.perf_counter() + warmup
    t_end = t_count + duration

    async def client():
        conn = Conn(port)
        while (t0 := time.perf_counter()) < t_end:
            await stats.one(conn, t0, t0 >= t_count)
        conn.close()

    await asyncio.gather(*(client() for _ in range(clients)))


async def open_loop(port: int, stats: Stats, rate: float, conns: int, warmup: float, duration: float) -> None:
    """Requests due at a fixed rate; latency counts from the due time (no coordinated omission)."""
    queue: asyncio.Queue = asyncio.Queue()
    t_start = time.perf_counter()

    async def schedule():
        for i in range(int(rate * (warmup + duration))):
            due = t_start + i / rate
            if (delay := due - time.perf_counter()) > 0:
                await asyncio.sleep(delay)
            queue.put_nowait(due)
        for _ in range(conns):
            queue.put_nowait(None)

    async def client():
        conn = Conn(port)
        while (due := await queue.get()) is not None:
            await stats.one(conn, due, due >= t_start + warmup)
        conn.close()

    await asyncio.gather(schedule(), *(client() for _ in range(conns)))


def measure(name: str, run, stats: Stats, duration: float) -> dict:
    """Run one phase and summarise it, with the load generator's own CPU share."""
    cpu, wall = time.process_time(), time.perf_counter()
    asyncio.run(run)
    client_cpu = (time.process_time() - cpu) / (time.perf_counter() - wall) * 100
    lat = sorted(stats.lat) or [float("nan")]
    pct = lambda p: lat[min(len(lat) - 1, int(p / 100 * len(lat)))] * 1000  # noqa: E731
    for why in sorted(set(stats.fails))[:3]:
        print(f"  {name}: FAIL x{stats.fails.count(why)}: {why}")
    return {"name": name, "rps": len(stats.lat) / duration, "p50": pct(50), "p99": pct(99),
            "n": len(stats.lat), "fails": len(stats.fails), "cpu": client_cpu}


# The apps measured: the real one as shipped (ask log written in batches off the request path), the
# real one writing each ask's log row during its request (PRECACHE_ASK_LOG_FLUSH_MS=0, as before
# precache.asklog), and the baseline: a bare Flask view doing one Redis GET.
APPS = (("real", "web:create_app()", {}), ("real, log/req", "web:create_app()", {"PRECACHE_ASK_LOG_FLUSH_MS": "0"}),
        ("bare", "bench.bare_redis_app:create_app()", {}))


def logged_asks(cfg: dict) -> int:
    """Return the rows in the SQL ask log once every ask waiting in Redis is written."""
    from sqlalchemy import func, select

    from precache import asklog
    from precache.config import load_settings
    from precache.context import Context
    from precache.models import AskLog

    ctx = Context(load_settings(**cfg))
    try:
        asklog.drain(ctx, wait_s=30)
        with ctx.sessions() as session:
            return session.scalar(select(func.count(AskLog.id)))
    finally:
        ctx.close()


WRK_SCRIPT = f"""wrk.method = "POST"
wrk.body = '{json.dumps({"question": QUESTION})}'
wrk.headers["Content-Type"] = "application/json"
"""


def wrk(port: int, args, script: Path) -> dict:
    """One closed-loop round of wrk (a C load generator: far less of the shared cores than the asyncio one)."""
    out = subprocess.run(["wrk", "-t1", f"-c{args.concurrency}", f"-d{args.duration:g}s", "--latency", "-s",
                          str(script), f"http://127.0.0.1:{port}/v1/ask"], capture_output=True, text=True,
                         timeout=args.duration + 60).stdout
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            "requests": int(re.search(r"(\d+) requests in", out).group(1)),
            "p99": re.search(r"99%\s+(\S+)", out).group(1), "errors": int(errors.group(1)) if errors else 0}


def wrk_rounds(ports: dict, args, tmp: Path) -> int:
    """Alternate rounds of real and bare under wrk; print each ratio; return the requests the real app answered."""
    script = tmp / "ask.lua"
    script.write_text(WRK_SCRIPT)
    answered, ratios = wrk(ports["real"], args, script)["requests"], []  # a warm-up round of each, not compared
    wrk(ports["bare"], args, script)
    print(f"\n{'round':<7}{'real req/s':>12}{'bare req/s':>12}{'real/bare':>11}{'real p99':>10}{'bare p99':>10}")
    for n in range(1, args.wrk_rounds + 1):
        real, bare = wrk(ports["real"], args, script), wrk(ports["bare"], args, script)
        if real["errors"] or bare["errors"]:
            sys.exit(f"round {n}: non-2xx responses (real {real['errors']}, bare {bare['errors']})")
        answered += real["requests"]
        ratios.append(real["rps"] / bare["rps"])
        print(f"{n:<7}{real['rps']:>12.0f}{bare['rps']:>12.0f}{ratios[-1]:>10.2f}x{real['p99']:>10}{bare['p99']:>10}")
    print(f"real/bare throughput over {len(ratios)} alternating rounds: median {sorted(ratios)[len(ratios) // 2]:.2f}x, "
          f"min {min(ratios):.2f}x, max {max(ratios):.2f}x")
    return answered


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--duration", type=float, default=10, help="measured seconds per phase")
    ap.add_argument("--warmup", type=float, default=2, help="unmeasured seconds before each phase")
    ap.add_argument("--concurrency", type=int, default=8, help="closed-loop clients")
    ap.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    ap.add_argument("--threads", type=int, default=4, help="gunicorn threads per gthread worker")
    ap.add_argument("--worker-class", choices=("gevent", "gthread"), default="gevent",
                    help="gunicorn worker class of both apps (gevent: as `precache web` runs)")
    ap.add_argument("--database-url", default="", help="SQLAlchemy URL; default a SQLite file in a temp dir")
    ap.add_argument("--wrk-rounds", type=int, default=0,
                    help="instead of the phases below: this many alternating closed-loop rounds of real and bare "
                         "under wrk (apt install wrk)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="precache-bench-") as tmp:
        cfg = {"database_url": args.database_url or f"sqlite:///{tmp}/bench.db", "var_dir": tmp,
               "redis_url": "redis://127.0.0.1:6379/13", "broker_url": "redis://127.0.0.1:6379/13"}
        redis.Redis.from_url(cfg["redis_url"]).flushdb()
        seed(cfg)
        logged_before = logged_asks(cfg)  # a --database-url may hold asks of earlier runs
        env = os.environ | {f"PRECACHE_{k.upper()}": v for k, v in cfg.items()}
        procs = []
        try:
            ports = {}
            for app, spec, extra in APPS:
                log_name = re.sub(r"\W+", "-", app) + ".log"
                proc, ports[app] = start(spec, args, env | extra, Path(tmp) / log_name)
                procs.append(proc)
            print(f"db={cfg['database_url'].split('@')[-1]}  gunicorn {args.worker_class} workers={args.workers} "
                  f"threads={args.threads if args.worker_class == 'gthread' else '-'}  clients={args.concurrency}  {args.duration}s (+{args.warmup}s warm-up)")
            print(f"NOTE: {os.cpu_count()} CPU cores; the load generator (one asyncio thread) shares them "
                  "with the servers, so absolute numbers are low and 'client CPU' is taken from the servers.")
            if args.wrk_rounds:
                answered = wrk_rounds(ports, args, Path(tmp)) + 2  # and the start-up probes of the real apps
                logged = logged_asks(cfg) - logged_before
                # wrk counts the responses it read; the requests still in flight when a round ends are
                # answered (and logged) too: at most one per connection a round.
                in_flight = args.concurrency * (args.wrk_rounds + 1)
                complete = answered <= logged <= answered + in_flight
                print(f"ask log: {logged} new rows in SQL for {answered} responses wrk read (+ up to {in_flight} "
                      f"in flight at the ends of rounds): {'every one logged' if complete else 'MISMATCH'}")
                sys.exit(0 if complete else 1)
            rows, answered = {}, 0
            for app, _, _ in APPS:
                st = Stats(app != "bare")
                rows["closed", app] = measure(f"closed {app}", closed_loop(
                    ports[app], st, args.concurrency, args.warmup, args.duration), st, args.duration)
                answered += st.answered if app != "bare" else 0
            rate = rows["closed", "real"]["rps"] / 2
            for app, _, _ in APPS:
                st = Stats(app != "bare")
                rows["open", app] = measure(f"open@{rate:.0f}/s {app}", open_loop(
                    ports[app], st, rate, 2 * args.concurrency, args.warmup, args.duration), st, args.duration)
                answered += st.answered if app != "bare" else 0
        finally:
            for proc in procs:
                stop(proc)
        logged = logged_asks(cfg) - logged_before
    print(f"\n{'phase':<26}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'requests':>10}{'fails':>7}{'client CPU':>12}")
    for r in rows.values():
        print(f"{r['name']:<26}{r['rps']:>9.0f}{r['p50']:>9.2f}{r['p99']:>9.2f}{r['n']:>10}{r['fails']:>7}"
              f"{r['cpu']:>11.0f}%")
    print()
    for app in ("real", "real, log/req"):
        closed, open_, bare_c, bare_o = rows["closed", app], rows["open", app], rows["closed", "bare"], rows["open", "bare"]
        print(f"{app + '/bare':<19} closed: throughput {closed['rps'] / bare_c['rps']:.2f}x, "
              f"p99 {closed['p99'] / bare_c['p99']:.2f}x   open@{rate:.0f}/s: p50 {open_['p50'] / bare_o['p50']:.2f}x, "
              f"p99 {open_['p99'] / bare_o['p99']:.2f}x")
    probes = 2  # the one answered start-up probe of each real app
    print(f"ask log: {logged} new rows in SQL for {answered + probes} requests the two real apps answered "
          f"(warm-ups and start-up probes included): {'every one logged' if logged == answered + probes else 'MISMATCH'}")
    if any(r["fails"] for r in rows.values()) or logged != answered + probes:
        sys.exit(1)


if __name__ == "__main__":
    main()
