"""How well the quality score tells good answers from bad ones: ROC AUC on the StackFAQ set.

Good pairs: (question, its gold answer), for the FAQ question and up to --paraphrases user
paraphrases of it. Bad pairs, one kind at a time, for the same questions:
  other      another entry's gold answer
  truncated  the gold answer cut mid-sentence at a random word
  looped     the start of the gold answer repeated until it is as long as the gold answer
  empty      an empty answer
  refusal    a refusal or disclaimer instead of an answer
  language   a support answer in another language (bench/data/foreign_answers.txt)
AUC per kind (good vs that kind) and overall (good vs all bad), scored by worker.quality.Scorer,
the code the worker and `precache score` run, without a reference answer (and, with
--reference, again with the FAQ's gold answer as the reference).

    .venv/bin/python bench/quality_auc.py [--paraphrases 3] [--reference]
"""

import argparse
import json
import random
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from precache.config import load_settings  # noqa: E402
from precache.semantic.embedders import embedder_for  # noqa: E402
from worker.quality import Scorer  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "stackfaq" / "stackExchange-FAQ.json"
FOREIGN = ROOT / "bench" / "data" / "foreign_answers.txt"
REFUSALS = [
    "I'm sorry, but I can't help with that.",
    "As an AI language model, I cannot answer this question.",
    "I am unable to provide information on that topic.",
    "Sorry, I don't have access to that information.",
    "I'm afraid I can't assist with this request.",
    "I cannot answer that. Please contact support for help.",
    "As an AI, I do not have the ability to look that up for you.",
    "I won't be able to help with this one, sorry.",
]


def auc(good: np.ndarray, bad: np.ndarray) -> float:
    """Return P(score of a good answer > score of a bad one), ties counting one half."""
    greater = (good[:, None] > bad[None, :]).sum()
    ties = (good[:, None] == bad[None, :]).sum()
    return float((greater + 0.5 * ties) / (len(good) * len(bad)))


def truncate(text: str, rng: random.Random) -> str:
    """Cut a text at a random word inside a sentence (never right after its end)."""
    words = text.split()
    if len(words) < 4:
        return " ".join(words[:max(1, len(words) - 1)])
    for _ in range(20):
        cut = rng.randint(max(2, len(words) // 4), len(words) - 1)
        if not words[cut - 1].endswith((".", "!", "?", ":")):
            return " ".join(words[:cut])
    return " ".join(words[:len(words) // 2])


def loop(text: str) -> str:
    """Repeat the first dozen words of a text until it is as long as the text."""
    words = text.split()
    head = " ".join(words[:12])
    times = max(3, len(words) // max(1, len(words[:12])))
    return " ".join([head] * times)


def build(paraphrases: int, seed: int):
    rng = random.Random(seed)
    entries = json.loads(DATA.read_text())["root"]["qapair"]
    foreign = [line for line in FOREIGN.read_text().splitlines() if line and not line.startswith("#")]
    golds = [" ".join(e["answer"]).strip() for e in entries]
    good, bad = [], {k: [] for k in ("other", "truncated", "looped", "empty", "refusal", "language")}
    for i, entry in enumerate(entries):
        phrasings = [r.strip() for r in entry.get("rephr") or [] if r and r.strip() not in ("", "*")]
        questions = [entry["question"], *rng.sample(phrasings, min(paraphrases, len(phrasings)))]
        gold = golds[i]
        for q in questions:
            good.append((q, gold, gold))
            other = rng.choice([j for j in range(len(entries)) if j != i])
            bad["other"].append((q, golds[other], gold))
            bad["truncated"].append((q, truncate(gold, rng), gold))
            bad["looped"].append((q, loop(gold), gold))
            bad["empty"].append((q, "", gold))
            bad["refusal"].append((q, rng.choice(REFUSALS), gold))
            bad["language"].append((q, rng.choice(foreign), gold))
    return good, bad


def scores(scorer: Scorer, pairs, with_reference: bool) -> np.ndarray:
    items = [(q, a, ref if with_reference else None, None, None) for q, a, ref in pairs]
    return np.array([s.quality for s in scorer.score_many(items)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--paraphrases", type=int, default=1, help="User paraphrases asked per FAQ entry.")
    parser.add_argument("--reference", action="store_true", help="Also score with the gold answer as reference.")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    good, bad = build(args.paraphrases, args.seed)
    scorer = Scorer(embedder_for(load_settings(), threads=None))  # as `precache score` and the worker
    started = time.perf_counter()
    modes = [False, True] if args.reference else [False]
    print(f"{len(good)} good pairs, {sum(map(len, bad.values()))} bad pairs ({len(bad)} kinds)\n")
    print("| kind of bad answer | " + " | ".join("AUC, reference" if m else "AUC" for m in modes) + " |")
    print("|---|" + "---|" * len(modes))
    results = {}
    for mode in modes:
        good_scores = scores(scorer, good, mode)
        bad_scores = {kind: scores(scorer, pairs, mode) for kind, pairs in bad.items()}
        results[mode] = {kind: auc(good_scores, s) for kind, s in bad_scores.items()}
        results[mode]["overall"] = auc(good_scores, np.concatenate(list(bad_scores.values())))
        results[mode]["_good_median"] = float(np.median(good_scores))
    for kind in [*bad, "overall"]:
        print(f"| {kind} | " + " | ".join(f"{results[m][kind]:.3f}" for m in modes) + " |")
    print("\nmedian quality of good answers: "
          + ", ".join(f"{results[m]['_good_median']:.3f}" for m in modes))
    elapsed = time.perf_counter() - started
    n = (len(good) + sum(map(len, bad.values()))) * len(modes)
    print(f"scored {n} pairs in {elapsed:.1f} s ({n / elapsed:.0f} pairs/s)")


if __name__ == "__main__":
    main()
