"""Time to first token of a streamed miss, against the time to the whole answer, in the same run.

    .venv/bin/python bench/chat_ttft.py [--questions 12] [--max-tokens 96]

It starts a private redis-server, a SQLite database in a temp dir, `precache worker` (SmolLM2 GGUF,
llama.cpp) and `precache web` (gunicorn), and talks to them only through the official `openai`
client. For each of N new questions, one after the other: streamed, the time to the first content
delta (TTFT) and to the last one; and, for N other new questions of the same kind, not streamed, the
time to the whole completion. Twice: with the worker idle when each question is asked (the bench waits
for the detailed answer the worker generates after each quick one), and back to back (the next asker
comes while that detailed answer is generating). A cached FAQ question streamed gives the instant TTFT.
Printed: p50 and max of each, and TTFT as a fraction of the time to the whole answer (what streaming
saves the asker before they see words).
"""

import argparse
import collections
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import openai
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.fuzz import free_port, start_redis  # noqa: E402
from bench.hit_path import stop  # noqa: E402
from bench.soak import KNOWN, start_stack  # noqa: E402

SOURCES: collections.Counter = collections.Counter()  # x-precache-source of every answer (misses: "generated")
# The questions of each way of asking: (streamed, not streamed) templates; topics keep them apart.
ASKED = {"idle worker": ("How do {} form, and why?", "What should a visitor know about {}?"),
         "back to back": ("What did early scientists get wrong about {}?", "Which places are famous for {}?")}
TOPICS = ["volcanoes", "glaciers", "tides", "rainbows", "earthquakes", "deserts", "coral reefs", "thunderstorms",
          "hurricanes", "caves", "rivers", "auroras", "geysers", "monsoons", "sand dunes", "fjords"]


def streamed(client, question: str) -> tuple[float, float, int]:
    """Return (seconds to the first content delta, seconds to the last, number of content deltas)."""
    started, first, last, pieces = time.perf_counter(), None, None, 0
    raw = client.chat.completions.with_raw_response.create(
        model="precache", messages=[{"role": "user", "content": question}], stream=True)
    SOURCES[raw.headers["x-precache-source"]] += 1
    for chunk in raw.parse():
        if chunk.choices and chunk.choices[0].delta.content:
            last = time.perf_counter() - started
            first = last if first is None else first
            pieces += 1
    return first, last, pieces


def whole(client, question: str) -> float:
    started = time.perf_counter()
    raw = client.chat.completions.with_raw_response.create(
        model="precache", messages=[{"role": "user", "content": question}])
    SOURCES[raw.headers["x-precache-source"]] += 1
    return time.perf_counter() - started


def summary(name: str, values: list[float]) -> str:
    return f"{name:<44} p50 {statistics.median(values) * 1000:8.0f} ms   max {max(values) * 1000:8.0f} ms"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--questions", type=int, default=12, help="new questions per way of asking (at most 16)")
    ap.add_argument("--max-tokens", type=int, default=96, help="PRECACHE_LLM_MAX_TOKENS_QUICK")
    args = ap.parse_args()
    n = min(args.questions, len(TOPICS))
    with tempfile.TemporaryDirectory(prefix="precache-ttft-") as tmp_name:
        tmp = Path(tmp_name)
        redis_proc, redis_base = start_redis(tmp)
        port, procs = free_port(), {}
        env = os.environ | {"PRECACHE_DATABASE_URL": f"sqlite:///{tmp}/ttft.db", "PRECACHE_REDIS_URL": f"{redis_base}/0",
                            "PRECACHE_BROKER_URL": f"{redis_base}/1", "PRECACHE_VAR_DIR": str(tmp / "var"),
                            "PRECACHE_LOG_LEVEL": "WARNING", "PRECACHE_LLM_MAX_TOKENS_QUICK": str(args.max_tokens),
                            "PRECACHE_LLM_THREADS": os.environ.get("PRECACHE_LLM_THREADS", "1")}
        try:
            base = start_stack(env, tmp, port, procs)
            client = openai.OpenAI(base_url=f"{base}/v1", api_key="unused", timeout=600, max_retries=0)
            whole(client, "What is a warm-up question?")  # the worker loads the model and the embedder once
            instant = [streamed(client, KNOWN[i])[0] for i in range(20)]
            results = {}
            for mode in ("idle worker", "back to back"):
                settle = (lambda q: requests.post(f"{base}/v1/ask", json={"question": q, "detail": "detailed",
                                                                          "wait_ms": 60000}, timeout=90)
                          ) if mode == "idle worker" else (lambda q: None)
                runs, wholes = [], []
                stream_asks, whole_asks = ASKED[mode]
                for topic in TOPICS[:n]:
                    runs.append(streamed(client, stream_asks.format(topic)))
                    settle(stream_asks.format(topic))
                    wholes.append(whole(client, whole_asks.format(topic)))
                    settle(whole_asks.format(topic))
                results[mode] = runs, wholes
        finally:
            for proc in procs.values():
                stop(proc)
            redis_proc.terminate()
            redis_proc.wait()
    print(f"{n} new questions each way, one at a time; SmolLM2 (llama.cpp), max {args.max_tokens} tokens")
    print(summary("streamed cached FAQ question: first token", instant))
    print(f"sources of the answers: {dict(SOURCES)} (the FAQ asks are exact; every other ask must be generated)")
    for mode, (runs, wholes) in results.items():
        firsts, lasts = [r[0] for r in runs], [r[1] for r in runs]
        print(f"-- {mode}")
        print(summary("streamed miss: first token (TTFT)", firsts))
        print(summary("streamed miss: last token", lasts))
        print(summary("not streamed miss: whole completion", wholes))
        print(f"content deltas per streamed miss: p50 {statistics.median(r[2] for r in runs):.0f}")
        print(f"TTFT / whole completion (p50s): {statistics.median(firsts) / statistics.median(wholes):.2f}; "
              f"TTFT / last streamed token (per question, p50): "
              f"{statistics.median(f / l for f, l in zip(firsts, lasts)):.2f}")


if __name__ == "__main__":
    main()
