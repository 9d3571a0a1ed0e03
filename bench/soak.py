"""Soak: minutes of steady load at half the measured saturation against gunicorn with a worker running.

    .venv/bin/python bench/soak.py [--minutes 10] [--saturation-s 15] [--miss-per-s 0.1] [--database-url URL]

It starts a private redis-server, migrates a SQLite database in a temp dir (or uses --database-url),
stores answers to 50 questions, and starts `precache web` (gunicorn) and `precache worker` (SmolLM2).
The request mix: hits of the 50 questions, 1 in 10 a template, and --miss-per-s new questions that
the worker generates (one llama.cpp thread unless PRECACHE_LLM_THREADS says otherwise, so that the
web keeps a core). A closed loop of 8 clients measures saturation on that mix; then an open loop
sends it at half the saturation rate for --minutes. It prints per minute the requests, errors
(anything but 200/202, or no answer), 5xx, p50 and p99, and the resident memory of each process at the
start and the end of the soak. Exit status 1 when any request failed.
"""

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.fuzz import free_port, start_redis  # noqa: E402
from bench.hit_path import Conn, stop  # noqa: E402

KNOWN = [f"What is the refund policy for plan {i}?" for i in range(50)]


def seed(env: dict) -> None:
    """Migrate the database and store an answer to every known question."""
    from precache.config import load_settings
    from precache.context import Context
    from precache.db import upgrade
    from precache.normalize import normalize, question_hash

    settings = load_settings(**{k.removeprefix("PRECACHE_").lower(): v for k, v in env.items()
                                if k.startswith("PRECACHE_")})
    upgrade(settings.database_url)
    ctx = Context(settings)
    for i, question in enumerate(KNOWN):
        n = normalize(question)
        qid = ctx.store.ensure_question(question, n, question_hash(n))
        ctx.store.save_answer(qid, f"Plan {i} is refunded within 14 days.", model="soak", quality=0.9)
    ctx.close()


def start(args: list[str], env: dict, log: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "cli", *args], env=env, cwd=ROOT, stdout=open(log, "wb"),
                            stderr=subprocess.STDOUT, start_new_session=True)


def wait_until(predicate, proc: subprocess.Popen, log: Path, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if predicate():
                return
        except requests.RequestException:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"not ready; log:\n{log.read_text()[-3000:]}")


def start_stack(env: dict, tmp: Path, port: int, procs: dict) -> str:
    """Seed the database, start `precache worker` and `precache web` (into `procs`); return the web's URL."""
    seed(env)
    procs["worker"] = start(["worker", "--loglevel", "warning"], env, tmp / "worker.log")
    procs["web"] = start(["web", "--port", str(port)], env, tmp / "web.log")
    base = f"http://127.0.0.1:{port}"
    wait_until(lambda: requests.get(f"{base}/readyz", timeout=2).ok, procs["web"], tmp / "web.log")
    return base


def rss_mb(procs: dict[str, subprocess.Popen]) -> dict[str, float]:
    """Resident memory of each process and of each child (gunicorn workers), in MB."""
    out = {}
    for name, proc in procs.items():
        parent = psutil.Process(proc.pid)
        out[name] = parent.memory_info().rss / 2**20
        for i, child in enumerate(parent.children(recursive=True)):
            out[f"{name} child {i + 1}"] = child.memory_info().rss / 2**20
    return out


class Record:
    """Every counted request: (start offset in s, latency in s, failure or None)."""

    def __init__(self):
        self.rows: list[tuple[float, float, str | None]] = []
        self.server_errors, self.t0 = 0, 0.0

    async def send(self, conn: Conn, question: str, due: float) -> None:
        try:
            status, body = await conn.ask(question).post()
            why = None if status in (200, 202) and b'"answer"' in body else f"{status} {body[:200]!r}"
            self.server_errors += status >= 500
        except Exception as exc:  # every failure is counted and shown
            conn.close()
            why = repr(exc)
        self.rows.append((due - self.t0, time.perf_counter() - due, why))


class Mix:
    """The request mix: hits of the known questions, 1 in 10 a template, and new questions at a fixed rate."""

    def __init__(self, miss_per_s: float, phase: str):
        self.miss_per_s, self.phase, self.misses, self.t0 = miss_per_s, phase, 0, time.perf_counter()

    def question(self, i: int, at: float) -> str:
        if self.miss_per_s and (at - self.t0) * self.miss_per_s >= self.misses + 1:
            self.misses += 1
            return f"In the {self.phase} phase, how does feature {self.misses} work?"
        return "hello" if i % 10 == 0 else KNOWN[i % len(KNOWN)]


async def closed_loop(port: int, mix: Mix, clients: int, seconds: float) -> float:
    """Return the requests per second of N clients sending back to back."""
    done, end = [0], time.perf_counter() + seconds

    async def client(k: int):
        conn, i = Conn(port), k
        while (now := time.perf_counter()) < end:
            await conn.ask(mix.question(i, now)).post()
            done[0], i = done[0] + 1, i + clients
        conn.close()

    await asyncio.gather(*(client(k) for k in range(clients)))
    return done[0] / seconds


async def open_loop(port: int, record: Record, mix: Mix, rate: float, seconds: float, conns: int) -> None:
    """Requests due at a fixed rate; latency counts from the due time (no coordinated omission)."""
    queue: asyncio.Queue = asyncio.Queue()
    record.t0 = t0 = time.perf_counter()

    async def schedule():
        for i in range(int(rate * seconds)):
            due = t0 + i / rate
            if (delay := due - time.perf_counter()) > 0:
                await asyncio.sleep(delay)
            queue.put_nowait((mix.question(i, due), due))
        for _ in range(conns):
            queue.put_nowait(None)

    async def client():
        conn = Conn(port)
        while (item := await queue.get()) is not None:
            await record.send(conn, *item)
        conn.close()

    await asyncio.gather(schedule(), *(client() for _ in range(conns)))


def per_minute(record: Record, minutes: float) -> list[dict]:
    rows = []
    for m in range(int(-(-minutes // 1))):
        lat = sorted(r[1] for r in record.rows if m * 60 <= r[0] < (m + 1) * 60) or [float("nan")]
        fails = sum(1 for r in record.rows if m * 60 <= r[0] < (m + 1) * 60 and r[2])
        pct = lambda p: lat[min(len(lat) - 1, int(p / 100 * len(lat)))] * 1000  # noqa: E731
        rows.append({"minute": m + 1, "n": len(lat), "fails": fails, "p50": pct(50), "p99": pct(99)})
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=10, help="length of the soak")
    ap.add_argument("--saturation-s", type=float, default=15, help="seconds of the closed loop that measures it")
    ap.add_argument("--miss-per-s", type=float, default=0.1, help="new questions per second (worker load)")
    ap.add_argument("--database-url", default="", help="SQLAlchemy URL; default a SQLite file in a temp dir")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="precache-soak-") as tmp_name:
        tmp = Path(tmp_name)
        redis_proc, redis_base = start_redis(tmp)
        port = free_port()
        env = os.environ | {"PRECACHE_DATABASE_URL": args.database_url or f"sqlite:///{tmp}/soak.db",
                            "PRECACHE_REDIS_URL": f"{redis_base}/0", "PRECACHE_BROKER_URL": f"{redis_base}/1",
                            "PRECACHE_VAR_DIR": str(tmp / "var"), "PRECACHE_LOG_LEVEL": "WARNING",
                            "PRECACHE_LLM_THREADS": os.environ.get("PRECACHE_LLM_THREADS", "1")}
        procs = {}
        try:
            base = start_stack(env, tmp, port, procs)
            # One generation first: the worker then holds everything it loads once (model, embedder).
            requests.post(f"{base}/v1/ask", json={"question": "What is a soak test?", "wait_ms": 60000}, timeout=90)
            saturation = asyncio.run(closed_loop(port, Mix(args.miss_per_s, "saturation"), 8, args.saturation_s))
            rate = saturation / 2
            print(f"saturation (closed loop, 8 clients, {args.saturation_s:g} s): {saturation:.0f} req/s; "
                  f"soak at {rate:.0f} req/s + {args.miss_per_s:g} new questions/s for {args.minutes:g} min")
            procs["redis"] = redis_proc
            before = rss_mb(procs)
            record = Record()
            asyncio.run(open_loop(port, record, Mix(args.miss_per_s, "soak"), rate, args.minutes * 60, 16))
            after = rss_mb(procs)
            queued = requests.get(f"{base}/v1/stats", timeout=10).json()["queues"]
        finally:
            for name, proc in procs.items():
                if name != "redis":
                    stop(proc)
            redis_proc.terminate()
            redis_proc.wait()
    report(record, args.minutes, before, after, queued)
    return 1 if any(r[2] for r in record.rows) else 0


def report(record: Record, minutes: float, before: dict, after: dict, queued: dict) -> None:
    print(f"\n{'minute':>6}{'requests':>10}{'errors':>8}{'p50 ms':>9}{'p99 ms':>9}")
    for row in per_minute(record, minutes):
        print(f"{row['minute']:>6}{row['n']:>10}{row['fails']:>8}{row['p50']:>9.2f}{row['p99']:>9.2f}")
    fails = [r[2] for r in record.rows if r[2]]
    print(f"total {len(record.rows)} requests, {len(fails)} errors, {record.server_errors} 5xx")
    for why in sorted(set(fails))[:3]:
        print(f"  x{fails.count(why)}: {why}")
    print(f"\n{'process':<18}{'RSS start MB':>14}{'RSS end MB':>12}")
    for name in before:
        print(f"{name:<18}{before[name]:>14.1f}{after.get(name, float('nan')):>12.1f}")
    print(f"queue depths at the end: {queued}")


if __name__ == "__main__":
    sys.exit(main())
