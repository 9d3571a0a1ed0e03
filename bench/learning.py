"""The cache learning from its askers, over HTTP: a shuffled stream of held-out askers and a simulated asker.

    .venv/bin/python bench/learning.py [--sets long short faq] [--seed 0] [--workers 2]

Each set imports a cache through the real `import_faq` (curated answers, one answer text per intent or
FAQ entry, its phrasings sharing it), starts the real app under gunicorn (`--workers` processes: what
one learns the others must use) with no Celery worker, and sends every asker of the stream to
POST /v1/ask. The simulated asker, knowing the right answer (its intent; None when out of scope):

- gets an instant answer (exact or semantic): right, or wrong and says so (POST /v1/feedback helpful
  false: a wrong instant answer flagged);
- gets suggestions: opens them (GET /v1/answers/<id>) and picks the right one when it is there
  (helpful true), else says none fits (answer_id null).

Printed per half of the stream: right instant answers (share of in-scope asks), wrong instant answers
(share of all asks), and the share of in-scope asks whose right answer was on screen at once (instant
answer or a suggestion). `--no-feedback` sends no feedback at all (first asks only: the calibrated
global rule). Then, for scale, a plain cosine threshold that learns every picked phrasing (in-process,
same embedder and stream) at the thresholds that bracket our wrong-hit rate.

Sets (../shared/data; scoring as in its README):
- long: banking77, 5 train phrasings cached per intent, a quarter of the intents unanswered (their
  test queries ask as out of scope), every test query asks (~40 per intent);
- short: the same with another seed and 17 test queries per intent;
- faq: StackFAQ, its questions cached, a quarter of the entries unanswered, the user paraphrases ask.
"""

import argparse
import collections
import json
import os
import random
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.semantic_path import DATA, Env  # noqa: E402

FEEDBACK_KEY = "bench-calling-app"


def load_set(name: str, seed: int):
    """Return (cache [(text, key)], askers [(text, key | None)]) of one set, the askers shuffled."""
    from cli.datasets import faq_task, intent_task

    if name == "faq":
        path = DATA / "stackfaq" / "stackExchange-FAQ.json"
        task = faq_task(path, json.loads(path.read_text(encoding="utf-8")), seed, unanswered=0.25)
    else:
        seed = seed if name == "long" else seed + 3
        banking = DATA / "banking77"
        task = intent_task(banking / "train.csv", banking / "test.csv", per_intent=5, seed=seed, unanswered=0.25)
    askers = task.askers
    if name == "short":
        rng, by_key = random.Random(seed), collections.defaultdict(list)
        for text, key in askers:
            by_key[key].append((text, key))
        askers = [a for key in sorted(k for k in by_key if k) for a in rng.sample(by_key[key], min(17, len(by_key[key])))]
        askers += rng.sample(by_key[None], min(len(by_key[None]), len(askers) // 3))  # a quarter out of scope
    cached = {t for t, _ in task.cache}
    askers = [a for a in dict.fromkeys(askers) if a[0] not in cached]
    random.Random(seed).shuffle(askers)
    return task.cache, askers


def answer_text(key: str) -> str:
    return f"The answer for {key}."


class Asker:
    """The simulated asker: reads each response, says what fits, and keeps the score per half."""

    def __init__(self, http, base: str, feedback: bool, show_wrong: bool = False):
        self.http, self.base, self.feedback, self.show_wrong = http, base, feedback, show_wrong
        self.key_of: dict[int, str | None] = {}  # answer id -> the key of its text

    def key(self, answer_id: int) -> str | None:
        if answer_id not in self.key_of:
            text = self.http.get(f"{self.base}/v1/answers/{answer_id}").json()["answer"]
            self.key_of[answer_id] = text[len("The answer for "):-1] if text.startswith("The answer for ") else None
        return self.key_of[answer_id]

    def ask(self, number: int, text: str, key: str | None, score: collections.Counter) -> None:
        body = self.http.post(f"{self.base}/v1/ask", json={"question": text}).json()
        score["asks"] += 1
        score["in_scope"] += key is not None
        if body["status"] == "ready" and body["source"] in ("exact", "semantic"):
            right = self.key(body["answer_id"]) == key and key is not None
            score["right" if right else "wrong"] += 1
            score["on_screen"] += right
            if not right and self.show_wrong:
                print(f"  wrong #{number} ({body['source']}, {body.get('similarity')}): {text!r} [{key}] -> "
                      f"{body['matched_question']!r} [{self.key(body['answer_id'])}]", flush=True)
            if not right:
                self.tell(number, text, body["answer_id"], False)
            return
        picked = next((s["answer_id"] for s in body.get("suggestions", []) if key and self.key(s["answer_id"]) == key),
                      None)
        score["on_screen"] += picked is not None
        self.tell(number, text, picked, picked is not None)

    def tell(self, number: int, text: str, answer_id: int | None, helpful: bool) -> None:
        if not self.feedback:
            return
        r = self.http.post(f"{self.base}/v1/feedback", json={"question": text, "answer_id": answer_id,
                                                              "helpful": helpful},
                           headers={"X-Asker-Id": f"asker-{number}", "X-Feedback-Key": FEEDBACK_KEY})
        r.raise_for_status()


def run_set(name: str, args) -> dict:
    import httpx

    cache, askers = load_set(name, args.seed)
    # The stream's askers are told apart by the calling app, which holds the feedback key and vouches for them.
    env = Env(f"precache-learning-{name}-", learn=not args.no_feedback, rate_limit="", feedback_key=FEEDBACK_KEY)
    try:
        env.import_curated([(text, answer_text(key)) for text, key in cache])
        port = env.start_web(args.workers, 4)
        base, halves = f"http://127.0.0.1:{port}", [collections.Counter(), collections.Counter()]
        started = time.perf_counter()
        with httpx.Client(timeout=60) as http:
            asker = Asker(http, base, not args.no_feedback, args.show_wrong)
            for number, (text, key) in enumerate(askers):
                asker.ask(number, text, key, halves[number >= len(askers) // 2])
                if number % 500 == 499:
                    print(f"  {name}: {number + 1}/{len(askers)} asks, {time.perf_counter() - started:.0f} s",
                          flush=True)
        result = {"set": name, "cache": len(cache), "askers": len(askers),
                  "out_of_scope": sum(k is None for _, k in askers), "halves": [rates(h) for h in halves]}
        result["cosine"] = cosine_learner(env.settings, cache, askers)
        return result
    finally:
        env.close()


def rates(score: collections.Counter) -> dict:
    in_scope = max(1, score["in_scope"])
    return {"right": score["right"] / in_scope, "wrong": score["wrong"] / max(1, score["asks"]),
            "on_screen": score["on_screen"] / in_scope}


def cosine_learner(settings, cache, askers, thresholds=(0.8, 0.83, 0.85, 0.87, 0.9, 0.93)) -> dict:
    """A plain cosine threshold that learns every picked phrasing (top-3 nearest answers suggested): second half."""
    from precache.semantic.embedders import embedder_for

    embedder = embedder_for(settings, threads=None)
    cached, asked = embedder.encode([t for t, _ in cache]), embedder.encode([t for t, _ in askers])
    found = {}
    for threshold in thresholds:
        vectors, keys, score = list(cached), [k for _, k in cache], collections.Counter()
        for number, ((_, key), vector) in enumerate(zip(askers, asked)):
            sims = np.stack(vectors) @ vector
            order = np.argsort(-sims)
            late = number >= len(askers) // 2
            score["asks"] += late
            score["in_scope"] += late and key is not None
            if sims[order[0]] >= threshold:
                score["right" if keys[order[0]] == key else "wrong"] += late
                continue
            shown = list(dict.fromkeys(keys[i] for i in order[:30]))[:3]
            if key in shown:
                vectors.append(vector)
                keys.append(key)
        found[threshold] = rates(score)
    return found


def show(result: dict) -> None:
    print(f"\n{result['set']}: {result['cache']} phrasings cached, {result['askers']} askers "
          f"({result['out_of_scope']} out of scope)")
    for half, r in zip(("first half", "second half"), result["halves"]):
        print(f"  {half:12s} right instant {r['right']:6.1%}   wrong instant {r['wrong']:6.2%}   "
              f"right answer on screen {r['on_screen']:6.1%}")
    print("  plain cosine learner, second half:")
    for threshold, r in result["cosine"].items():
        print(f"    threshold {threshold:.2f}: right {r['right']:6.1%}   wrong {r['wrong']:6.2%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sets", nargs="+", default=["long", "short", "faq"], choices=["long", "short", "faq"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--no-feedback", action="store_true", help="send no feedback: first asks only")
    parser.add_argument("--show-wrong", action="store_true", help="print each wrong instant answer as it happens")
    args = parser.parse_args()
    for name in args.sets:
        show(run_set(name, args))


if __name__ == "__main__":
    main()
