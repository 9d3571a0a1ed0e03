"""Two more signals for the semantic tier's decision, tried against the shipped rule: crowding and a posterior.

The shipped threshold is set by the densest caches, where intents sit close together, and applies to
every answer alike. Here each curated answer also gets its *crowding*: how near its phrasings come to
the phrasings of the nearest other answers in the same cache (the FAQ alone, no askers). An answer with
close neighbours needs more confidence: it is served when

    confidence - weight * max(0, crowding - pivot) >= threshold

The second signal is a posterior: a softmax (temperature tau) over the similarities of the 20 nearest
cached phrasings, summed per answer; the served answer's share must be at least p, beside the shipped
confidence clearing the threshold (an ask close to three answers at once is ambiguous even when the
first two are far apart).

For each setting the lowest threshold that keeps every fitting set within 0.5 % wrong hits is found
(18 banking77 caches: 3, 5 and 8 phrasings per intent x 3 seeds x all intents answered or a quarter
unanswered; StackFAQ; GPTCache's mock data), then the hits at that threshold are printed, and the
sparse stress sets (not fitted) are scored at it too. Any configured embedder is scored the same way
(PRECACHE_EMBEDDING_MODEL; the first row is then the shipped rule refitted to that model).

    .venv/bin/python bench/local_density.py
"""

import argparse
import itertools
import os
import random
import sys
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cli.calibrate import Embeddings, build_index, tasks_of  # noqa: E402
from cli.datasets import load_task, question_texts  # noqa: E402
from precache.config import load_settings  # noqa: E402
from precache.semantic.embedders import embedder_for  # noqa: E402
from precache.semantic.store import CURATED  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
from semantic_quality import sparse_intents  # noqa: E402

TARGET = 0.005
TAUS = (0.01, 0.02, 0.03, 0.05)
SHARES = (0.6, 0.8, 0.95)


def crowding(index, top: int) -> dict[str, float]:
    """Return each answer's crowding: the mean, over its phrasings, of the similarity to the `top` nearest other answers' phrasings."""
    keys = np.array(index.answer_keys)
    matrix = index.vectors.rows(len(keys))
    found = {}
    for start in range(0, len(keys), 512):
        sims = matrix[start:start + 512] @ matrix.T
        sims[keys[start:start + 512, None] == keys[None, :]] = -np.inf
        k = min(top, sims.shape[1] - 1)
        near = -np.sort(-sims, axis=1)[:, :k].mean(axis=1)
        for key, value in zip(keys[start:start + 512], near):
            found.setdefault(key, []).append(float(value))
    return {key: float(np.mean(values)) for key, values in found.items()}


def posterior(index, vector, served: str) -> list[float]:
    """Return the served answer's share of a softmax over the 20 nearest phrasings, at each temperature in TAUS."""
    positions, sims = index.search(vector, 20)
    mine = np.array([index.answer_keys[p] == served for p in positions])
    weights = [np.exp((sims - sims.max()) / tau) for tau in TAUS]
    return [float(w[mine].sum() / w.sum()) for w in weights]


def outcomes(task, embed, settings, top: int):
    """Return an array per ask: (confidence, similarity, crowding of the served answer, correct, in scope, posteriors)."""
    index = build_index(task, embed([t for t, _ in task.cache]), settings)
    crowd = crowding(index, top)
    rows = []
    for (text, key), vector in zip(task.askers, embed([t for t, _ in task.askers])):
        found = index.best(text, vector)
        if found is None:
            rows.append((-9.0, -1.0, 0.0, False, key is not None, *[0.0] * len(TAUS)))
            continue
        served = index.answer_keys[found.question_id]
        rows.append((found.confidence, found.similarity, crowd[served],
                     key is not None and served == CURATED + str(key), key is not None,
                     *posterior(index, vector, served)))
    return np.array(rows, dtype=np.float64)


def score(rows, weight, pivot, min_similarity, tau=None, share=0.0):
    """Return (adjusted confidence, served-at-all mask)."""
    adjusted = rows[:, 0] - weight * np.maximum(0.0, rows[:, 2] - pivot)
    ok = rows[:, 1] >= min_similarity
    return adjusted, ok if tau is None else ok & (rows[:, 5 + TAUS.index(tau)] >= share)


def rates(rows, adjusted, ok, threshold):
    hit = ok & (adjusted >= threshold)
    correct = rows[:, 3].astype(bool)
    return (hit & correct).sum() / max(1, rows[:, 4].sum()), (hit & ~correct).sum() / len(rows)


def lowest(rows, adjusted, ok, target):
    order = np.argsort(-np.where(ok, adjusted, -np.inf), kind="stable")
    wrong, best = 0, np.inf
    correct = rows[:, 3].astype(bool)
    for i, j in enumerate(order):
        if not ok[j]:
            break
        wrong += not correct[j]
        if wrong / len(rows) > target:
            break
        if i + 1 == len(order) or adjusted[order[i + 1]] < adjusted[j]:
            best = adjusted[j]
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--top", type=int, default=3, help="nearest other phrasings that make an answer's crowding")
    args = parser.parse_args()
    settings = load_settings()
    embed = Embeddings(embedder_for(settings, threads=None))
    data = args.data
    faq = data / "stackfaq" / "stackExchange-FAQ.json"
    fit, stress = {}, {}
    for per_intent, seed in itertools.product((3, 5, 8), (0, 1, 2)):
        qqp = random.Random(seed).sample(question_texts(data / "gptcache" / "qqp_balanced_4000.jsonl"), 1000)
        both = tasks_of(data / "banking77" / "train.csv", question_texts(faq) + qqp, data / "banking77" / "test.csv",
                        per_intent, seed=seed, unanswered=0.25)
        for task, label in zip(both, ("answered", "1/4 unanswered")):
            fit[f"banking77 {per_intent}/intent seed {seed} {label}"] = outcomes(task, embed, settings, args.top)
        stress[f"sparse {per_intent}/intent seed {seed}"] = outcomes(
            sparse_intents(data, embed, per_intent, seed), embed, settings, args.top)
    fit["stackfaq"] = outcomes(load_task(faq), embed, settings, args.top)
    fit["mock_data"] = outcomes(load_task(data / "gptcache" / "mock_data.json"), embed, settings, args.top)
    banking = random.Random(0).sample(question_texts(data / "banking77" / "test.csv"), 500)
    qqp = random.Random(0).sample(question_texts(data / "gptcache" / "qqp_balanced_4000.jsonl"), 1000)
    stress["stackfaq 1/4 unanswered + OOS"] = outcomes(tasks_of(faq, qqp + banking, seed=0, unanswered=0.25)[1],
                                                       embed, settings, args.top)
    floor = settings.semantic_min_similarity
    print(f"crowding = mean similarity to the {args.top} nearest other answers' phrasings")
    print("| rule | threshold | banking77 mean hits / worst wrong | stackfaq | mock_data | "
          "sparse mean hits / worst wrong | stackfaq 1/4 unanswered + OOS |")
    print("|---|---|---|---|---|---|---|")
    rules = {"shipped rule": (0.0, 0.0, None, 0.0)}
    rules |= {f"crowding, weight {w}, pivot {p}": (w, p, None, 0.0)
              for w, p in itertools.product((0.1, 0.2, 0.3, 0.5, 1.0), (0.4, 0.5, 0.6, 0.7))}
    rules |= {f"posterior, tau {t}, share >= {q}": (0.0, 0.0, t, q) for t, q in itertools.product(TAUS, SHARES)}
    for name, rule in rules.items():
        print(row(name, fit, stress, {n: score(r, *rule[:2], floor, *rule[2:]) for n, r in {**fit, **stress}.items()}),
              flush=True)


def row(name, fit, stress, adjusted) -> str:
    """Return one table row: the lowest threshold within the target on every fitting set, and the rates there."""
    threshold = max(lowest(fit[n], *adjusted[n], TARGET) for n in fit)
    got = {n: rates(r, *adjusted[n], threshold) for n, r in {**fit, **stress}.items()}
    bank = [v for k, v in got.items() if k.startswith("banking77")]
    sparse = [v for k, v in got.items() if k.startswith("sparse")]

    def cell(r):
        return f"{r[0]:.1%} / {r[1]:.2%}"

    return (f"| {name} | {threshold:.3f} | {np.mean([b[0] for b in bank]):.1%} / {max(b[1] for b in bank):.2%} | "
            f"{cell(got['stackfaq'])} | {cell(got['mock_data'])} | {np.mean([s[0] for s in sparse]):.1%} / "
            f"{max(s[1] for s in sparse):.2%} | {cell(got['stackfaq 1/4 unanswered + OOS'])} |")


if __name__ == "__main__":
    main()
