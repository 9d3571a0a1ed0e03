"""What the sweep's look for lost messages costs under a backlog, against the sweep's requeue step.

    .venv/bin/python bench/sweep_backlog.py --backlog 1000 10000

For each backlog size, N new questions each get a quick job whose message waits in the broker (no
worker runs), as behind a worker that cannot keep up. The sweep then runs its two steps on that state:
`requeue` (the step it always had: unanswered questions in SQL, each one's single-flight lock in Redis)
and `resend_lost_jobs` (reads the broker's queues and unacked hash in one MULTI, parses every
generation message, and keeps the lock of each job it finds). Both run against a private redis-server
and a temp-dir SQLite database; the figures are medians of --repeat runs, and the ratio is to requeue
measured in the same run. A last line checks the outcome: nothing is sent twice, every lock is kept.
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.semantic_path import Env  # noqa: E402


def timed(fn, repeat: int) -> tuple[float, object]:
    runs, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        runs.append((time.perf_counter() - started) * 1000)
    return statistics.median(runs), result


def one(backlog: int, repeat: int) -> None:
    from tqdm import tqdm

    from precache import broker, keys
    from precache.normalize import normalize, question_hash
    from precache.recovery import requeue, resend_lost_jobs

    env = Env("precache-sweep-", generation_timeout_s=0.5)
    try:
        ctx = env.ctx
        for i in tqdm(range(backlog), desc=f"{backlog} jobs queued", unit="job", file=sys.stdout, mininterval=2.0,
                      ascii=True):
            text = f"What happens to backlog question number {i}?"
            qhash = question_hash(normalize(text))
            ctx.jobs.enqueue(ctx.ns, qhash, lambda t=text, h=qhash: ctx.store.ensure_question(t, normalize(t), h))
        time.sleep(0.6)  # every message is older than the generation timeout: each is a candidate
        requeue_ms, queued = timed(lambda: requeue(ctx), repeat)
        held_ms, held = timed(lambda: broker.held_job_ids(env.settings.broker_url), repeat)
        resend_ms, resent = timed(lambda: resend_lost_jobs(ctx), repeat)
        ttls = [ctx.redis.ttl(name) for name in ctx.redis.scan_iter(keys.pending("*", "*", "quick"), count=1000)]
        print(f"backlog {backlog}: requeue {requeue_ms:.0f} ms (baseline, 1.00x); broker read and parse "
              f"{held_ms:.0f} ms ({held_ms / requeue_ms:.2f}x); resend_lost_jobs in all {resend_ms:.0f} ms "
              f"({resend_ms / requeue_ms:.2f}x)")
        print(f"  outcome: {len(held)} of {backlog} messages found in the broker, {len(queued)} requeued, "
              f"{len(resent)} sent again, {len(ttls)} locks, least TTL {min(ttls)} s")
    finally:
        env.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backlog", type=int, nargs="+", default=[1000, 10000], help="queued jobs per run")
    ap.add_argument("--repeat", type=int, default=5, help="runs of each step; the median is printed")
    args = ap.parse_args()
    for backlog in args.backlog:
        one(backlog, args.repeat)


if __name__ == "__main__":
    main()
