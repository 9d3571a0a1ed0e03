"""Calibrate the semantic tier on labelled data: hit rate against wrong-hit rate over thresholds.

Scoring follows ../shared/data/README.md: hit rate = right hits / in-scope asks; wrong-hit rate =
(hits on another intent or entry + any hit for an out-of-scope ask) / all asks. Every ask goes
through SemanticIndex.best, the code path of SemanticIndex.match in the web; a threshold t serves
exactly the asks whose confidence is >= t (and similarity >= the configured minimum).
"""

import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cli.datasets import Task, kind_of, load_task, question_texts
from precache.semantic.index import SemanticIndex
from precache.semantic.store import CURATED

__all__ = ["Outcome", "Task", "evaluate", "load_task", "lowest_threshold", "question_texts", "rates", "run", "tasks_of"]
CURVE = [round(0.8 + 0.03 * i, 2) for i in range(17)]


@dataclass(frozen=True)
class Outcome:
    """What the tier would do for one ask, before any threshold.

    `confidence` is the highest threshold that still serves it: the match's confidence, or +inf when
    that clears the threshold floor of a curated answer measured against the FAQ itself (then it is
    served whatever the threshold; see SemanticIndex.measure_curated).
    """

    confidence: float
    similarity: float
    correct: bool
    in_scope: bool


@dataclass
class Embeddings:
    """Vectors of many texts, computed once with a progress bar."""

    embedder: object
    cache: dict = field(default_factory=dict)

    def __call__(self, texts: list[str], desc: str = "embedding") -> np.ndarray:
        from tqdm import tqdm

        missing = list(dict.fromkeys(t for t in texts if t not in self.cache))
        with tqdm(total=len(missing), desc=desc, unit="q", disable=not missing) as bar:
            for start in range(0, len(missing), 64):
                batch = missing[start:start + 64]
                self.cache.update(zip(batch, self.embedder.encode(batch)))
                bar.update(len(batch))
        return np.stack([self.cache[t] for t in texts]) if texts else np.zeros((0, 0), dtype=np.float32)


def build_index(task: Task, vectors: np.ndarray, settings) -> SemanticIndex:
    """Return an index holding the task's cached questions, keyed by their answer: curated, as `faq import` stores them."""
    index = SemanticIndex.from_settings(settings)
    n = len(task.cache)
    index.add(list(range(n)), [str(i) for i in range(n)], [t for t, _ in task.cache], vectors,
              [CURATED + str(key) for _, key in task.cache])
    index.remeasure()
    return index


def evaluate(task: Task, embed: Embeddings, settings, guards: bool = True,
             index: SemanticIndex | None = None) -> list[Outcome]:
    """Return the outcome of every ask of the task (against `index` when given: the task's, built already)."""
    if index is None:
        index = build_index(task, embed([t for t, _ in task.cache], "embedding cache"), settings)
    vectors = embed([t for t, _ in task.askers], "embedding askers")
    return [_outcome(index, text, key, vector, guards) for (text, key), vector in zip(task.askers, vectors)]


def _outcome(index: SemanticIndex, text: str, key, vector, guards: bool) -> Outcome:
    """What the index serves one ask (`key`: the right answer's, None when out of scope)."""
    found = index.best(text, vector, guards=guards)
    if found is None:
        return Outcome(-1.0, -1.0, False, key is not None)
    served = index.answer_keys[found.question_id]
    correct = key is not None and CURATED + str(key) == served
    # A sparse FAQ's curated answers are served from a floor of their own (English asks only: a Korean ask
    # has its embedder's threshold).
    floor = index.threshold_of(served, np.inf) if index.korean_calibration(text) is None else np.inf
    confidence = found.confidence if found.confidence < floor else np.inf
    return Outcome(confidence, found.similarity, correct, key is not None)


def rates(outcomes: list[Outcome], threshold: float, min_similarity: float) -> tuple[float, float]:
    """Return (hit rate, wrong-hit rate) at a threshold."""
    hits = [o for o in outcomes if o.confidence >= threshold and o.similarity >= min_similarity]
    in_scope = sum(o.in_scope for o in outcomes) or 1
    return sum(o.correct for o in hits) / in_scope, sum(not o.correct for o in hits) / max(1, len(outcomes))


def lowest_threshold(outcomes: list[Outcome], target: float, min_similarity: float) -> float | None:
    """Return the lowest threshold whose wrong-hit rate is at most `target` (None if none serves anything)."""
    served = sorted((o for o in outcomes if o.similarity >= min_similarity), key=lambda o: -o.confidence)
    wrong, best = 0, None
    for i, o in enumerate(served):
        wrong += not o.correct
        if wrong / len(outcomes) > target:
            break
        if i + 1 == len(served) or served[i + 1].confidence < o.confidence:
            best = o.confidence  # all asks at this confidence are in
    return best


def tasks_of(path: Path, outside: list[str], askers=None, per_intent=3, limit=None, seed=0, unanswered=0.0):
    """Return the tasks of one file: an intent CSV or an FAQ also once with a share of its intents or entries unanswered.

    Those two get the `outside` questions as out-of-scope askers (they have no out-of-scope class of
    their own); GPTCache's mock data and question pairs are scored as they are.
    """
    if kind_of(path) not in ("intent", "faq"):
        return [load_task(path, limit=limit, seed=seed)]
    found = []
    for share in dict.fromkeys([0.0, unanswered]):
        task = load_task(path, askers=askers, per_intent=per_intent, seed=seed, limit=limit, unanswered=share)
        known = {t for t, _ in task.cache} | {t for t, _ in task.askers}
        task.askers += [(t, None) for t in outside if t not in known]
        found.append(task)
    return found


def run(files, settings, embedder, echo=print, target=0.005, askers=None, per_intent=3, oos=(),
        oos_limit=1000, limit=None, seed=0, unanswered=0.25) -> float | None:
    """Print the curve for each file and return the strictest threshold meeting `target`."""
    embed = Embeddings(embedder)
    rng = random.Random(seed)
    outside = [t for path in oos for t in question_texts(path)]
    outside = rng.sample(outside, min(oos_limit, len(outside)))
    chosen = []
    for path in files:
        for task in tasks_of(Path(path), outside, askers, per_intent, limit, seed, unanswered):
            results = {g: evaluate(task, embed, settings, guards=g) for g in (True, False)}
            chosen.append(_print_curve(echo, task, results, target, settings.semantic_min_similarity))
    found = [c for c in chosen if c is not None]
    strictest = max(found) if found else None
    echo(f"\nthreshold for <= {target:.2%} wrong hits on every file (guards on): "
         + (f"{strictest:.3f}" if strictest is not None else "none"))
    return strictest


def _print_curve(echo, task, results, target, min_similarity) -> float | None:
    in_scope = sum(k is not None for _, k in task.askers)
    echo(f"\n{task.name}: {len(task.cache)} cached, {len(task.askers)} asks ({len(task.askers) - in_scope} out of scope)")
    echo(f"  {'threshold':>9}  {'hits':>7} {'wrong':>7}   {'hits':>7} {'wrong':>7}")
    echo(f"  {'':>9}  {'guards on':>15}   {'guards off':>15}")
    for t in CURVE:
        on, off = rates(results[True], t, min_similarity), rates(results[False], t, min_similarity)
        echo(f"  {t:9.2f}  {on[0]:7.1%} {on[1]:7.2%}   {off[0]:7.1%} {off[1]:7.2%}")
    lows = {g: lowest_threshold(results[g], target, min_similarity) for g in (True, False)}
    for g, low in lows.items():
        _print_lowest(echo, "on " if g else "off", results[g], low, target, min_similarity)
    return lows[True]


def _print_lowest(echo, label: str, results, low: float | None, target: float, min_similarity: float) -> None:
    if low is None:
        echo(f"  guards {label}: no threshold meets {target:.2%}")
        return
    hit, wrong = rates(results, low, min_similarity)
    echo(f"  guards {label}: lowest threshold with <= {target:.2%} wrong: {low:.3f} "
         f"({hit:.1%} hits, {wrong:.2%} wrong)")

