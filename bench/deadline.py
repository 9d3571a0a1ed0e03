"""Measure how closely POST /v1/ask honours wait_ms when no worker answers (the fallback path).

Starts a private Redis and the real app under gunicorn, no Celery worker. Asks N new questions
with wait_ms=W and reports the overshoot (elapsed - W) against the exact-hit latency measured
in the same run: what a deadline costs beyond the wait itself.
"""

import argparse
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.fuzz import start_redis  # noqa: E402
from bench.hit_path import QUESTION, seed, start, stop  # noqa: E402


def timed(url: str, body: dict) -> tuple[float, requests.Response]:
    started = time.perf_counter()
    response = requests.post(url, json=body, timeout=60)
    return (time.perf_counter() - started) * 1000, response


def percentiles(values: list[float]) -> str:
    q = statistics.quantiles(values, n=100)
    return f"p50 {q[49]:7.1f}  p99 {q[98]:7.1f}  max {max(values):7.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--asks", type=int, default=200)
    parser.add_argument("--wait-ms", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--worker-class", choices=("gevent", "gthread"), default="gevent")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="precache-deadline-"))
    redis_proc, base = start_redis(tmp)
    cfg = {"database_url": f"sqlite:///{tmp / 'bench.db'}", "redis_url": f"{base}/0", "broker_url": f"{base}/1",
           "var_dir": tmp / "var"}
    seed(cfg)
    env = {**__import__("os").environ, **{f"PRECACHE_{k.upper()}": str(v) for k, v in cfg.items()}}
    web, port = start("web:create_app()", args, env, tmp / "web.log")
    url = f"http://127.0.0.1:{port}/v1/ask"
    try:
        hits = [timed(url, {"question": QUESTION})[0] for _ in range(100)]
        with ThreadPoolExecutor(args.concurrency) as pool:
            results = list(pool.map(lambda i: timed(url, {"question": f"New question number {i}?",
                                                          "wait_ms": args.wait_ms}), range(args.asks)))
    finally:
        stop(web)
        redis_proc.terminate()
    statuses = sorted({r.status_code for _, r in results})
    overshoot = [ms - args.wait_ms for ms, _ in results]
    print(f"{args.asks} new questions, wait_ms={args.wait_ms}, {args.concurrency} concurrent, no worker")
    print(f"statuses: {statuses}  fallback answers: {sum(r.json()['source'] == 'fallback' for _, r in results)}")
    print(f"exact hit latency ms      {percentiles(hits)}")
    print(f"overshoot past wait_ms ms {percentiles(overshoot)}")
    print(f"overshoot p50 / hit p50: {statistics.median(overshoot) / statistics.median(hits):.2f}x")


if __name__ == "__main__":
    main()
