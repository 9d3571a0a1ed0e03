"""Benchmark waiting streams: the latency of cached asks beside N open /v1/ask/stream responses that wait for
new answers, and the memory the web processes use, under each gunicorn worker class of `precache web`.

For each worker class: start `precache web` as shipped (no worker: every new question waits), time cached asks
alone (the baseline of the same run), open N streams of new questions and read each one's first event, time
cached asks again beside them, and read the web processes' resident memory and Redis's client count.
The per-client caps are lifted here (one load generator speaks for all askers).

    python bench/streams.py --streams 1000
"""

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import redis
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.hit_path import QUESTION, free_port, launch, seed, stop  # noqa: E402


def start_web(cfg: dict, worker_class: str, log_path: Path) -> tuple[subprocess.Popen, int]:
    """Start `precache web` with the worker class and wait until it answers the cached question."""
    port = free_port()
    env = os.environ | {f"PRECACHE_{k.upper()}": str(v) for k, v in cfg.items()} | {
        "PRECACHE_WEB_WORKER_CLASS": worker_class, "PRECACHE_STREAMS_PER_CLIENT": "0",
        "PRECACHE_NEW_QUESTIONS_PER_MINUTE": "0", "PRECACHE_STREAM_MAX_S": "900", "PRECACHE_LOG_LEVEL": "WARNING"}
    cmd = [sys.executable, "-m", "cli", "web", "--port", str(port)]
    return launch(cmd, env, log_path, port, timeout=120), port


def cached_asks(port: int, n: int, timeout: float) -> dict:
    """Time `n` cached asks one after another, each on a new connection (an asker arriving); count timeouts."""
    latencies, timeouts = [], 0
    for _ in range(n):
        t0 = time.perf_counter()
        try:
            r = requests.post(f"http://127.0.0.1:{port}/v1/ask", json={"question": QUESTION}, timeout=timeout)
            assert r.status_code == 200 and r.json()["source"] == "exact", r.text[:200]
            latencies.append(time.perf_counter() - t0)
        except requests.Timeout:
            timeouts += 1
            if timeouts >= 3:  # the server is not answering: three are enough to say so
                break
    latencies.sort()
    pct = lambda p: latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))] * 1000 if latencies else None  # noqa: E731
    return {"p50": pct(50), "p95": pct(95), "answered": len(latencies), "timeouts": timeouts}


async def open_streams(port: int, n: int, timeout: float) -> tuple[list, int]:
    """Open `n` streams of distinct new questions (connecting 50 at a time); return the writers held and how many
    got their first event within `timeout` of the start."""
    held, opened, gate = [], 0, asyncio.Semaphore(50)
    deadline = time.monotonic() + timeout

    async def one(i: int):
        nonlocal opened
        async with gate:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            held.append(writer)
            question = quote(f"Waiting question number {i} about the quarterly invoice export?")
            writer.write(f"GET /v1/ask/stream?question={question} HTTP/1.1\r\nHost: b\r\n\r\n".encode())
        try:
            head = await asyncio.wait_for(reader.readuntil(b"event: "), max(0.1, deadline - time.monotonic()))
            opened += b" 200 " in head[:15]
        except (asyncio.TimeoutError, asyncio.IncompleteReadError):
            pass

    await asyncio.gather(*(one(i) for i in range(n)))
    return held, opened


def resident_mib(pid: int) -> float:
    """Resident memory of a process and its children, in MiB (from /proc)."""
    total, pids = 0, [pid]
    while pids:
        p = pids.pop()
        try:
            status = Path(f"/proc/{p}/status").read_text()
            total += int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")))
            for task in Path(f"/proc/{p}/task").iterdir():
                pids += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total / 1024


def run(cfg: dict, worker_class: str, args, tmp: Path) -> dict:
    proc, port = start_web(cfg, worker_class, tmp / f"web-{worker_class}.log")
    cache = redis.Redis.from_url(cfg["redis_url"])
    try:
        cached_asks(port, 20, args.timeout)  # warm-up
        alone = cached_asks(port, args.asks, args.timeout)
        memory_before, clients_before = resident_mib(proc.pid), cache.info("clients")["connected_clients"]
        loop = asyncio.new_event_loop()
        t0 = time.perf_counter()
        held, opened = loop.run_until_complete(open_streams(port, args.streams, args.open_timeout))
        open_s = time.perf_counter() - t0
        beside = cached_asks(port, args.asks, args.timeout)
        memory, clients = resident_mib(proc.pid), cache.info("clients")["connected_clients"]
        for writer in held:
            writer.close()
        loop.close()
    finally:
        stop(proc)
        cache.close()
    return {"class": worker_class, "alone": alone, "beside": beside, "opened": opened, "open_s": open_s,
            "memory_before": memory_before, "memory": memory, "redis_clients": clients - clients_before}


def ms(value) -> str:
    return f"{value:.1f}" if value is not None else "-"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--streams", type=int, default=1000, help="waiting streams to open")
    ap.add_argument("--asks", type=int, default=100, help="cached asks timed alone and beside the streams")
    ap.add_argument("--classes", default="gevent,gthread", help="worker classes to compare, comma-separated")
    ap.add_argument("--timeout", type=float, default=5, help="seconds a cached ask may take before it counts as "
                    "not answered")
    ap.add_argument("--open-timeout", type=float, default=120,
                    help="seconds all the streams may take to send their first event")
    args = ap.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="precache-streams-") as tmp:
        for worker_class in args.classes.split(","):
            cfg = {"database_url": f"sqlite:///{tmp}/{worker_class}.db", "var_dir": f"{tmp}/{worker_class}",
                   "redis_url": "redis://127.0.0.1:6379/13", "broker_url": "redis://127.0.0.1:6379/12"}
            for url in (cfg["redis_url"], cfg["broker_url"]):
                redis.Redis.from_url(url).flushdb()
            seed(cfg)
            print(f"{worker_class}: opening {args.streams} streams ...", flush=True)
            results.append(run(cfg, worker_class, args, Path(tmp)))
    print(f"\n{args.streams} waiting streams, {args.asks} cached asks alone then beside them "
          f"(`precache web`, 2 workers; ms)")
    print(f"{'class':<9}{'opened':>8}{'open s':>8}{'alone p50':>11}{'p95':>8}{'beside p50':>12}{'p95':>8}"
          f"{'ratio p50':>11}{'unanswered':>12}{'RSS MiB':>10}{'+ MiB':>8}{'Redis +clients':>16}")
    for r in results:
        a, b = r["alone"], r["beside"]
        ratio = f"{b['p50'] / a['p50']:.2f}x" if a["p50"] and b["p50"] else "-"
        print(f"{r['class']:<9}{r['opened']:>8}{r['open_s']:>8.1f}{ms(a['p50']):>11}{ms(a['p95']):>8}"
              f"{ms(b['p50']):>12}{ms(b['p95']):>8}{ratio:>11}{b['timeouts']:>12}{r['memory']:>10.0f}"
              f"{r['memory'] - r['memory_before']:>8.0f}{r['redis_clients']:>16}")


if __name__ == "__main__":
    main()
