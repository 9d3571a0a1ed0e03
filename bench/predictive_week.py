"""A simulated week of asks where one paraphrased question keeps missing, with and without predictive precompute.

    .venv/bin/python bench/predictive_week.py [--days 7] [--per-day 4] [--predict-after 3]

Two runs in the same process, each with its own private redis-server, SQLite file and a real
Celery worker (SmolLM2 GGUF) generating every miss: StackFAQ's 125 entries are imported with
their curated answers (the precomputed FAQ); every day, askers send a few FAQ paraphrases and
`--per-day` NEW phrasings of one question the FAQ lacks ("change my delivery address"). Each new
phrasing is an exact miss; the worker answers it, but every phrasing gets its own answer, so the
semantic tier sees several different answers side by side and (rightly) serves none of them.

In run B, predictive precompute (`worker.scheduled.predictive_precompute`, the beat job's body)
runs each night from day `--predict-after` on; run A never runs it. Printed per run: the share of
the topic's new phrasings answered instantly (exact/semantic, before any generation) on the days
after the first night, the generations spent by the predictive job against PREDICTIVE_BUDGET,
and the worker's generations overall.
"""

import argparse
import os
import random
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.semantic_path import Env, stackfaq  # noqa: E402

TOPIC = [  # one question the FAQ does not have, in the words of many askers
    "How do I change my delivery address?", "Can I change the delivery address of my order?",
    "how to change delivery address", "I need to change my delivery address", "change delivery address please",
    "Is it possible to change my delivery address?", "How can I update my delivery address?",
    "Where do I change the delivery address for my order?", "I want to change my delivery address",
    "Can you change my delivery address?", "how can i change the delivery address on my order",
    "Change the delivery address of an order", "How do I edit my delivery address?",
    "What do I do to change my delivery address?", "can I update the delivery address for my order",
    "delivery address change", "Help me change my delivery address", "How to update delivery address?",
    "I entered the wrong delivery address, how do I change it?", "Can the delivery address be changed?",
    "how do I modify my delivery address", "change my order's delivery address",
    "Please update my delivery address", "How can the delivery address be changed?",
    "Steps to change delivery address", "Could I change the delivery address?", "update my delivery address",
    "How do I correct my delivery address?",
]
INSTANT = ("exact", "semantic", "template")


def start_worker(env: Env, log: Path) -> subprocess.Popen:
    # 48 new tokens an answer on these 2 cores unless the environment says otherwise.
    limits = {name: os.environ.get(name, "48")
              for name in ("PRECACHE_LLM_MAX_TOKENS_QUICK", "PRECACHE_LLM_MAX_TOKENS_DETAILED")}
    proc = subprocess.Popen([sys.executable, "-m", "cli", "worker"], env=env.env | limits,
                            stdout=log.open("wb"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 300
    while "ready." not in log.read_text():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"worker did not start:\n{log.read_text()[-2000:]}")
        time.sleep(0.5)
    return proc


def drain(env: Env, timeout: float = 600, kind: str = "*", worker: subprocess.Popen | None = None) -> None:
    """Wait until no generation job of `kind` (quick, detailed, refresh; * for any) is pending.

    Job records, not single-flight locks: a lock expires after 600 s whether its job ran or still
    waits in the queue behind a backlog.
    """
    from precache import keys

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        names = list(env.ctx.redis.scan_iter(keys.job("*"), count=1000))
        pipe = env.ctx.redis.pipeline()
        for name in names:
            pipe.hmget(name, "status", "kind")
        if not any(status == b"pending" and kind in ("*", (job_kind or b"").decode())
                   for status, job_kind in pipe.execute()):
            return
        if worker is not None and worker.poll() is not None:  # e.g. the model crashed it: say so, don't wait
            raise SystemExit(f"the worker exited with code {worker.returncode} while jobs were pending "
                             f"(its log: {env.tmp / 'worker.log'})")
        time.sleep(0.5)
    raise SystemExit("the worker did not catch up")


def generations(env: Env) -> int:
    from precache import keys

    return int(env.ctx.redis.get(keys.generations("quick")) or 0)  # each also gets a background detailed answer


def run(name: str, predictive: bool, args, faq, days) -> dict:
    from worker import scheduled
    from precache.semantic.embedders import shared_embedder
    from web import create_app

    env = Env(f"precache-week-{name}-")
    env.import_curated([(e["question"], e["answer"]) for e in faq])
    worker = start_worker(env, env.tmp / "worker.log")
    app = create_app(env.cfg | {"predictive_min_misses": 3, "predictive_budget": args.budget})
    client = app.test_client()
    topic_asks, predictive_generations = [], 0
    try:
        for day, (faq_asks, topic) in enumerate(days, 1):
            for text in faq_asks + topic:
                body = client.post("/v1/ask", json={"question": text}).get_json()
                if text in topic:
                    topic_asks.append((day, body["source"]))
            drain(env, worker=worker)
            if predictive and day >= args.predict_after:
                before = generations(env)
                result = scheduled.predictive_precompute(app.extensions["precache"],
                                                         shared_embedder(threads=None))
                drain(env, worker=worker)
                predictive_generations += generations(env) - before
                if result["queued"]:  # its answer landed: link the paraphrases now (the next run would)
                    scheduled.predictive_precompute(app.extensions["precache"], shared_embedder(threads=None))
                print(f"  [{name}] night {day}: {result}")
        later = [source for day, source in topic_asks if day > args.predict_after]
        return {"instant_after": sum(s in INSTANT for s in later) / max(1, len(later)), "asks_after": len(later),
                "predictive_generations": predictive_generations, "all_generations": generations(env)}
    finally:
        app.extensions["precache"].close()
        worker.terminate()
        worker.wait(30)
        env.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--per-day", type=int, default=4, help="New phrasings of the missing question a day.")
    parser.add_argument("--faq-per-day", type=int, default=10, help="FAQ paraphrases asked a day.")
    parser.add_argument("--predict-after", type=int, default=3, help="First night predictive precompute runs.")
    parser.add_argument("--budget", type=int, default=5, help="PREDICTIVE_BUDGET: generations a run may queue.")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.days * args.per_day > len(TOPIC):
        raise SystemExit(f"--days x --per-day must be <= {len(TOPIC)} (distinct phrasings)")
    rng = random.Random(args.seed)
    faq = stackfaq()
    phrasings = TOPIC[:]
    rng.shuffle(phrasings)
    days = []
    for day in range(args.days):
        asks = [rng.choice(e["rephr"] or [e["question"]]) for e in rng.sample(faq, args.faq_per_day)]
        days.append((asks, phrasings[day * args.per_day:(day + 1) * args.per_day]))
    results = {name: run(name, predictive, args, faq, days)
               for name, predictive in (("A-without", False), ("B-predictive", True))}
    print(f"\n{args.days} days, {args.per_day} new phrasings of the missing question a day, predictive from "
          f"night {args.predict_after}, budget {args.budget} generations a run\n")
    print("| run | instant share of the topic's new phrasings after night "
          f"{args.predict_after} | predictive generations (budget {args.budget}/run) | worker generations |")
    print("|---|---|---|---|")
    for name, r in results.items():
        print(f"| {name} | {r['instant_after']:.0%} of {r['asks_after']} | {r['predictive_generations']} | "
              f"{r['all_generations']} |")


if __name__ == "__main__":
    main()
