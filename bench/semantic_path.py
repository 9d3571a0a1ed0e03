"""Latency of semantic hits against exact hits over HTTP, with 10 000 curated questions cached.

    .venv/bin/python bench/semantic_path.py [--size 10000] [--duration 10] [--rounds 2] [--concurrency 4 1]

It starts a private redis-server and a temp-dir SQLite database, imports `--size` questions with
curated answers through `import_faq` (which embeds them for the semantic tier): every StackFAQ
question with its gold answer, QQP questions (a duplicate pair shares one synthetic answer) and
banking77 train texts (one synthetic answer per intent, so an FAQ-like cache where many phrasings
share an answer). It then checks in-process which paraphrases the semantic tier serves (StackFAQ
`rephr` entries and banking77 test texts that are not cached verbatim), starts the real app under
gunicorn (gthread, no Celery worker) and measures, with the same closed-loop client, exact hits
(cached questions verbatim) and semantic hits (the served paraphrases), alternating the two in
`--rounds` rounds so that background load hits both alike. Goal: semantic-hit p50 <= 12 ms with the
multilingual default. `--korean N` also caches N StyleKQC paraphrase groups (first phrasing, an answer
each) and `--ask ko` asks only their served Korean paraphrases (encoded by multilingual-e5-small).
"""

import argparse
import asyncio
import collections
import csv
import itertools
import json
import os
import random
import shutil
import sys
import tempfile
import time
import unicodedata
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.fuzz import start_redis
from bench.hit_path import closed_loop, start, stop

DATA = ROOT.parent / "shared" / "data"


# --- shared with bench/workload.py --------------------------------------------------------------

def clean(text: str, limit: int = 2000) -> str | None:
    """Return the text stripped if the API accepts it as a question (letters, no control chars), else None."""
    from precache.normalize import normalize

    text = " ".join(text.split())
    if not text or len(text) > limit or any(unicodedata.category(c) == "Cc" for c in text):
        return None
    return text if normalize(text) else None


def qhash(text: str) -> str:
    from precache.normalize import normalize, question_hash

    return question_hash(normalize(text))


def same(a: str, b: str) -> bool:
    return " ".join(a.split()) == " ".join(b.split())


def stackfaq() -> list[dict]:
    """Return StackFAQ entries as {question, answer (the first, gold), rephr: [paraphrases]}."""
    pairs = json.loads((DATA / "stackfaq" / "stackExchange-FAQ.json").read_text(encoding="utf-8"))["root"]["qapair"]
    return [{"question": p["question"].strip(), "answer": p["answer"][0].strip(),
             "rephr": [r for r in (clean(x) for x in p.get("rephr") or [] if isinstance(x, str) and x.strip() != "*")
                       if r]} for p in pairs]


class Env:
    """A private redis-server, a temp-dir SQLite database (migrated) and the settings/env to reach them."""

    def __init__(self, prefix: str, **settings):
        from precache.config import load_settings
        from precache.context import Context
        from precache.db import upgrade

        self.tmp = Path(tempfile.mkdtemp(prefix=prefix))
        self.redis_proc, base = start_redis(self.tmp)
        # One load generator speaks for every asker: the per-client caps are lifted.
        self.cfg = {"database_url": f"sqlite:///{self.tmp / 'bench.db'}", "redis_url": f"{base}/0",
                    "broker_url": f"{base}/1", "var_dir": str(self.tmp / "var"), "streams_per_client": 0,
                    "new_questions_per_minute": 0} | settings
        upgrade(self.cfg["database_url"])
        self.settings = load_settings(**self.cfg)
        self.ctx = Context(self.settings)
        self.env = os.environ | {f"PRECACHE_{k.upper()}": str(v) for k, v in self.cfg.items()}
        self.web = None

    def import_curated(self, pairs: list[tuple[str, str]], batch: int = 500) -> float:
        """import_faq the (question, answer) pairs in batches, with a progress bar; return seconds."""
        from tqdm import tqdm

        from precache.faq import FaqEntry, import_faq

        started = time.perf_counter()
        with tqdm(total=len(pairs), desc="import_faq (store + embed)", unit="q", file=sys.stdout,
                  mininterval=2.0, ascii=True) as bar:
            for at in range(0, len(pairs), batch):
                entries = [FaqEntry(at + i + 1, q, a) for i, (q, a) in enumerate(pairs[at:at + batch])]
                import_faq(self.ctx, entries)
                bar.update(len(entries))
        return time.perf_counter() - started

    def start_web(self, workers: int, threads: int) -> int:
        """Start the real app under gunicorn gevent, as `precache web` runs it (bench/hit_path.start); return its
        port."""
        args = argparse.Namespace(workers=workers, threads=threads, worker_class="gevent")
        self.web, port = start("web:create_app()", args, self.env, self.tmp / "web.log")
        return port

    def close(self) -> None:
        if self.web is not None:
            stop(self.web)
        self.ctx.close()
        self.redis_proc.terminate()
        self.redis_proc.wait(10)
        shutil.rmtree(self.tmp, ignore_errors=True)


def ask_bytes(port: int, body: dict) -> bytes:
    """Return a keep-alive POST /v1/ask request for bench/hit_path.Conn (its `request` attribute)."""
    data = json.dumps(body).encode()
    return (f"POST /v1/ask HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\n\r\n").encode() + data


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(p / 100 * len(values)))]


# --- this benchmark -----------------------------------------------------------------------------

class Phase:
    """bench/hit_path.closed_loop's `stats`: each request asks the next question of a cycle."""

    def __init__(self, name: str, questions: list[str], expected: str):
        self.name, self.expected = name, expected
        self.items = itertools.cycle(questions)
        self.lat: list[float] = []
        self.hit_lat: list[float] = []  # latencies of responses from the expected source
        self.fails: list[str] = []
        self.sources: collections.Counter = collections.Counter()
        self.seconds = 0.0

    async def one(self, conn, t0: float, counted: bool) -> None:
        conn.request = ask_bytes(conn.port, {"question": next(self.items)})
        try:
            status, body = await conn.post()
            source = json.loads(body).get("source") if status in (200, 202) else f"HTTP {status}"
        except Exception as exc:  # noqa: BLE001 - counted and shown, never hidden
            conn.close()
            status, source = None, f"error {exc!r}"
        if counted:
            elapsed = time.perf_counter() - t0
            self.lat.append(elapsed)
            self.sources[source] += 1
            if source == self.expected:
                self.hit_lat.append(elapsed)
            if status not in (200, 202):
                self.fails.append(source)


def corpus(size: int, qqp_count: int, seed: int):
    """Return (cache pairs, answer by qhash, candidate paraphrases with their gold answer)."""
    rng = random.Random(seed)
    faq = stackfaq()
    pairs: dict[str, tuple[str, str]] = {}

    def add(text, answer):
        text = clean(text)
        if text and (h := qhash(text)) not in pairs:
            pairs[h] = (text, answer)

    for entry in faq:
        add(entry["question"], entry["answer"])
    rows = [json.loads(line) for line in (DATA / "gptcache" / "qqp_balanced_4000.jsonl").read_text().splitlines()]
    rng.shuffle(rows)
    start_len = len(pairs)
    for i, r in enumerate(rows):
        if len(pairs) - start_len >= qqp_count:
            break
        answer = f"Curated answer #{i} for: {r['text_a'].strip()}"
        add(r["text_a"], answer)
        if len(pairs) - start_len < qqp_count:
            add(r["text_b"], answer if int(r["label"]) == 1 else f"Curated answer #{i}b for: {r['text_b'].strip()}")
    intent_answer = lambda c: f"Banking help for '{c.replace('_', ' ')}': see the matching help centre article."
    with (DATA / "banking77" / "train.csv").open(encoding="utf-8", newline="") as f:
        train = [(r["text"], r["category"]) for r in csv.DictReader(f)]
    rng.shuffle(train)
    for text, category in train:
        if len(pairs) >= size:
            break
        add(text, intent_answer(category))
    with (DATA / "banking77" / "test.csv").open(encoding="utf-8", newline="") as f:
        test = [(r["text"], r["category"]) for r in csv.DictReader(f)]
    candidates = [(r, e["answer"], "stackfaq rephr") for e in faq for r in e["rephr"]]
    candidates += [(t, intent_answer(c), "banking77 test") for t, c in test if clean(t)]
    candidates = [(clean(t), a, k) for t, a, k in candidates if qhash(clean(t)) not in pairs]
    candidates = list({qhash(t): (t, a, k) for t, a, k in candidates}.values())
    return list(pairs.values()), {h: a for h, (_, a) in pairs.items()}, candidates


def korean_corpus(groups: int, seed: int) -> tuple[list, list]:
    """Return (cache pairs, candidates) of StyleKQC groups: each group's first phrasing cached with an answer of
    its own, its other phrasings asking for it."""
    rows = [json.loads(line) for line in
            (DATA / "korean" / "stylekqc_groups_train_dev.jsonl").read_text(encoding="utf-8").splitlines()]
    rows = random.Random(seed).sample(rows, min(groups, len(rows)))
    cache, candidates = [], []
    for row in rows:
        phrasings = row["formal"] + row["informal"]
        answer = f"'{phrasings[0]}'에 대한 답변입니다 ({row['group']})."
        cache.append((clean(phrasings[0]), answer))
        candidates += [(clean(t), answer, "stylekqc") for t in phrasings[1:] if clean(t)]
    return cache, candidates


def served_in_process(env: Env, candidates, answers) -> tuple[list[str], collections.Counter, str]:
    """Return the candidates the semantic tier serves (same index and decision as the web), a tally, and
    the in-process cost of one semantic hit's parts (encode one question, match it)."""
    from precache.semantic.embedders import embedder_for
    from precache.semantic.index import SemanticIndex

    index = SemanticIndex.from_settings(env.settings)
    index.refresh(env.ctx)
    embedder = embedder_for(env.settings)
    vectors = embedder.encode([t for t, _, _ in candidates])
    kept, tally = [], collections.Counter()
    for (text, gold, kind), vector in zip(candidates, vectors):
        match = index.match(text, vector)
        tally[kind, "asked"] += 1
        if match is not None:
            right = same(answers[match.qhash], gold)
            tally[kind, "served right" if right else "served WRONG"] += 1
            kept.append(text)
    encode, decide = [], []
    for text in kept[:100]:
        t0 = time.perf_counter()
        vector = embedder.encode_one(text)
        t1 = time.perf_counter()
        index.match(text, vector)
        encode.append(t1 - t0)
        decide.append(time.perf_counter() - t1)
    parts = (f"encode one question p50 {pct(encode, 50) * 1000:.2f} ms (p99 {pct(encode, 99) * 1000:.2f}), "
             f"match in {len(index)} cached p50 {pct(decide, 50) * 1000:.2f} ms (p99 {pct(decide, 99) * 1000:.2f})")
    return kept, tally, parts


def summary(name: str, phases: list[Phase]) -> dict:
    lat = [x for p in phases for x in p.lat]
    hits = [x for p in phases for x in p.hit_lat]
    seconds = sum(p.seconds for p in phases)
    sources = sum((p.sources for p in phases), collections.Counter())
    return {"name": name, "rps": len(lat) / seconds, "p50": pct(lat, 50) * 1000, "p99": pct(lat, 99) * 1000,
            "hit_p50": pct(hits, 50) * 1000, "hit_p99": pct(hits, 99) * 1000, "n": len(lat), "hits": len(hits),
            "sources": sources, "fails": sum(len(p.fails) for p in phases)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=10_000, help="cached questions with curated answers")
    ap.add_argument("--qqp", type=int, default=2_000, help="of which QQP questions (the rest banking77 train)")
    ap.add_argument("--duration", type=float, default=10, help="measured seconds per phase and round")
    ap.add_argument("--warmup", type=float, default=2, help="unmeasured seconds before each phase")
    ap.add_argument("--rounds", type=int, default=2, help="exact then semantic, this many times")
    ap.add_argument("--concurrency", type=int, nargs="+", default=[4, 1],
                    help="closed-loop clients; one measurement per value")
    ap.add_argument("--candidates", type=int, default=2000,
                    help="paraphrases checked in-process (a seeded sample), the served ones are asked")
    ap.add_argument("--torch-threads", type=int, default=1,
                    help="torch threads of this process (import + check); on 2 shared cores 2 threads were "
                         "several times slower than 1")
    ap.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    ap.add_argument("--threads", type=int, default=4, help="gunicorn threads per worker")
    ap.add_argument("--korean", type=int, default=0,
                    help="StyleKQC paraphrase groups also cached (first phrasing; the others are candidates)")
    ap.add_argument("--ask", choices=("all", "en", "ko"), default="all",
                    help="which served paraphrases are asked over HTTP: all, English only or Korean only")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    started = time.perf_counter()
    print(f"{os.cpu_count()} CPU cores, load average {os.getloadavg()[0]:.2f} at start "
          "(the CPUs are shared with whatever else runs, e.g. a CI run)")
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(args.torch_threads)
    threadpool_limits(limits=1, user_api="blas")  # as the web does (precache/semantic/tier.py)
    cache, answers, candidates = corpus(args.size - args.korean, args.qqp, args.seed)
    if len(candidates) > args.candidates:
        candidates = random.Random(args.seed).sample(candidates, args.candidates)
    if args.korean:
        korean_cache, korean_candidates = korean_corpus(args.korean, args.seed)
        cache += korean_cache
        answers |= {qhash(q): a for q, a in korean_cache}
        candidates = [c for c in candidates if args.ask != "ko"] + (
            random.Random(args.seed).sample(korean_candidates, min(args.candidates, len(korean_candidates)))
            if args.ask != "en" else [])
    # Every semantic ask is encoded: the phases cycle through the same paraphrases, which the
    # per-process memory of recent questions would otherwise answer without encoding.
    env = Env("precache-semantic-path-", semantic_recent_size=0)
    try:
        seconds = env.import_curated(cache)
        print(f"imported {len(cache)} questions with curated answers in {seconds:.1f} s "
              f"({len(set(answers.values()))} distinct answers)")
        t = time.perf_counter()
        served, tally, parts = served_in_process(env, candidates, answers)
        print(f"in-process check of {len(candidates)} paraphrases not cached verbatim ({time.perf_counter() - t:.1f} s):")
        for kind in ("stackfaq rephr", "banking77 test", "stylekqc"):
            print(f"  {kind:<15} asked {tally[kind, 'asked']:>5}  served {tally[kind, 'served right'] + tally[kind, 'served WRONG']:>5}"
                  f"  (right {tally[kind, 'served right']}, wrong {tally[kind, 'served WRONG']})")
        print(f"in-process, {env.settings.embedding_backend} on one thread, 100 served paraphrases: {parts}")
        exact = [q for q, _ in cache]
        random.Random(args.seed).shuffle(exact)
        random.Random(args.seed).shuffle(served)
        port = env.start_web(args.workers, args.threads)
        print(f"gunicorn gthread workers={args.workers} threads={args.threads}, closed loop, "
              f"{args.rounds} rounds x {args.duration:g} s per phase (+{args.warmup:g} s warm-up each), "
              f"{len(exact)} exact and {len(served)} semantic questions cycled")
        results = {}
        for clients in args.concurrency:
            phases = {"exact": [], "semantic": []}
            for _ in range(args.rounds):
                for name, questions in (("exact", exact), ("semantic", served)):
                    phase = Phase(name, questions, name)
                    t = time.perf_counter()
                    asyncio.run(closed_loop(port, phase, clients, args.warmup, args.duration))
                    phase.seconds = time.perf_counter() - t - args.warmup
                    phases[name].append(phase)
            results[clients] = [summary(name, ps) for name, ps in phases.items()]
        load = os.getloadavg()[0]
    finally:
        env.close()
    failed = False
    for clients, (ex, se) in results.items():
        print(f"\n{clients} client(s)  {'phase':<10}{'req/s':>8}{'p50 ms':>9}{'p99 ms':>9}{'requests':>10}{'fails':>7}"
              "   sources")
        for r in (ex, se):
            print(f"{'':<12}{r['name']:<10}{r['rps']:>8.1f}{r['p50']:>9.2f}{r['p99']:>9.2f}{r['n']:>10}{r['fails']:>7}"
                  "   " + ", ".join(f"{s}={n}" for s, n in r["sources"].most_common()))
        print(f"  semantic asks that came back source=semantic: {se['hits']}/{se['n']} ({se['hits'] / se['n']:.1%}); "
              f"their own p50 {se['hit_p50']:.2f} ms, p99 {se['hit_p99']:.2f} ms")
        print(f"  semantic/exact: p50 {se['p50'] / ex['p50']:.2f}x, p99 {se['p99'] / ex['p99']:.2f}x, "
              f"req/s {se['rps'] / ex['rps']:.2f}x")
        print(f"  goal semantic-hit p50 <= 12 ms: {'MET' if se['hit_p50'] <= 12 else 'NOT MET'} ({se['hit_p50']:.2f} ms)")
        failed = failed or bool(ex["fails"] or se["fails"])
    print(f"\nload average {load:.2f} at the end; total {time.perf_counter() - started:.0f} s")
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
