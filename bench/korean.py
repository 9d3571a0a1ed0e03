"""The semantic tier on Korean: right and wrong instant answers per set at the shipped settings, near misses,
and the encode time of a Korean question.

Sets (../shared/data/korean/; protocol of its README): half of the StyleKQC paraphrase groups cached with
one phrasing each as a curated answer, their other phrasings asking for it, every phrasing of the other
half asking as out of scope.
- style: groups of every topic (a seeded sample of --groups);
- same topic: every group of one topic (420 groups: close neighbours on one subject);
- dev: the 120 dev groups (not used to choose the calibration).
Near misses: bench/data/korean_near_misses.tsv, 30 hand-written pairs (on/off, opposite actions,
negation, place, day, number, object); the first of each pair cached, the second asked: a hit serves
the other question's answer. Scoring: right = right hits / in-scope asks; wrong = wrong hits / all
asks. Each set prints the figures at the shipped threshold and the lowest threshold with <= 0.5 %
wrong (guards on), for calibrating another Korean embedder (KOREAN_EMBEDDING_MODEL).

    .venv/bin/python bench/korean.py [--groups 600] [--model multilingual-e5-small]
"""

import argparse
import csv
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cli.calibrate import Embeddings, evaluate, lowest_threshold, rates  # noqa: E402
from cli.datasets import Task, group_rows, groups_task  # noqa: E402
from precache.config import load_settings  # noqa: E402
from precache.language import KOREAN  # noqa: E402
from precache.semantic import calibration  # noqa: E402
from precache.semantic.embedders import embedder_for  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "korean" / "stylekqc_groups_train_dev.jsonl"
NEAR_MISSES = ROOT / "bench" / "data" / "korean_near_misses.tsv"
TARGET = 0.005


def sets(groups: int, seed: int) -> list[Task]:
    rows = group_rows(DATA)
    train = [r for r in rows if r["group"].startswith("train")]
    dev = [r for r in rows if r["group"].startswith("dev")]
    import random

    sample = random.Random(seed).sample(train, min(groups, len(train)))
    topic = [r for r in train if r["topic"] == train[0]["topic"]]
    return [groups_task(DATA, seed, sample, f"style ({len(sample)} groups, half cached)"),
            groups_task(DATA, seed, topic, f"same topic ({len(topic)} groups of one topic, half cached)"),
            groups_task(DATA, seed, dev, f"dev ({len(dev)} groups, half cached)")]


def near_misses() -> Task:
    with NEAR_MISSES.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    return Task("near misses (30 pairs)", [(r["cached"], str(i)) for i, r in enumerate(rows)],
                [(r["asked"], None) for r in rows])


def encode_ms(embedder, texts: list[str]) -> float:
    """Median milliseconds to embed one question, one at a time (as the web does)."""
    embedder.encode_one(texts[0])
    times = []
    for text in texts:
        start = time.perf_counter()
        embedder.encode_one(text)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--groups", type=int, default=600, help="StyleKQC train groups in the style set")
    parser.add_argument("--model", default=None, help="Korean embedder (default: the shipped KOREAN_EMBEDDING_MODEL)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    overrides = {"korean_embedding_model": args.model} if args.model else {}
    settings = load_settings(**overrides)
    shipped = calibration.for_language(settings, KOREAN)
    embed = Embeddings(embedder_for(settings, threads=1))
    print(f"Korean embedder {settings.korean_embedding_model}: threshold {shipped.threshold}, "
          f"min similarity {shipped.min_similarity} ({shipped.measured_with or 'not calibrated'})")
    print(f"{'set':<52} {'right':>7} {'wrong':>7}   lowest threshold <= {TARGET:.1%} wrong")
    for task in sets(args.groups, args.seed):
        for guards in (True, False):
            outcomes = evaluate(task, embed, settings, guards=guards)
            right, wrong = rates(outcomes, shipped.threshold, shipped.min_similarity)
            low = lowest_threshold(outcomes, TARGET, shipped.min_similarity)
            at_low = rates(outcomes, low, shipped.min_similarity) if low is not None else (0.0, 0.0)
            label = f"{task.name}, guards {'on' if guards else 'off'}"
            print(f"{label:<52} {right:7.1%} {wrong:7.2%}   "
                  + (f"{low:.3f} ({at_low[0]:.1%} right, {at_low[1]:.2%} wrong)" if low is not None else "none"))
    task = near_misses()
    for guards in (True, False):
        outcomes = evaluate(task, embed, settings, guards=guards)
        served = sum(o.confidence >= shipped.threshold and o.similarity >= shipped.min_similarity for o in outcomes)
        print(f"near misses served the other answer, guards {'on' if guards else 'off'}: {served} of {len(outcomes)}")
    texts = [t for t, _ in sets(60, args.seed + 1)[0].askers][:300]
    print(f"encode one Korean question: median {encode_ms(embedder_for(settings, threads=1), texts):.1f} ms "
          f"({len(texts)} questions, one thread)")


if __name__ == "__main__":
    main()
