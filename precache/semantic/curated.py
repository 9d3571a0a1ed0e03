"""Curated self-measurement: how confident a wrong match can look in this FAQ, asked against itself.

With a threshold floor below the threshold (SEMANTIC_THRESHOLD_FLOOR) each curated phrasing is asked
with its own answer taken out; the most confident of those (necessarily wrong) matches is where the
curated answers are served from, kept between the floor and the threshold (see decision.py).
"""

import logging
import threading

import numpy as np

from precache.semantic.decision import CANDIDATES, answer_score, confidence
from precache.semantic.store import CURATED

log = logging.getLogger(__name__)


def most_confident_wrong(answer_keys: list[str], matrix: np.ndarray, min_similarity: float, limit: int) -> float:
    """Ask every curated phrasing with its own answer left out; return the highest confidence of those wrong matches.

    `answer_keys` and `matrix` are the index's keys and vectors (a snapshot). Searched like `best` (the nearest CANDIDATES phrasings, guards off, so never less than a real
    ask would get), among curated phrasings only: generated answers are one per asked question,
    and a paraphrase answered twice is not a wrong match. -inf when no wrong match reaches the
    minimum similarity; +inf when there are more curated phrasings than `limit` (not
    measured, the threshold stays).
    """
    rows = [p for p, key in enumerate(answer_keys) if key.startswith(CURATED)]
    if len(rows) > limit:
        return float("inf")
    if not rows:
        return float("-inf")
    matrix = matrix[rows]
    keys = [answer_keys[p] for p in rows]
    group_of = {key: g for g, key in enumerate(dict.fromkeys(keys))}
    labels = np.array([group_of[key] for key in keys])
    return _worst_wrong(matrix, labels, _centroids(matrix, labels, len(group_of)), min_similarity)


def _centroids(matrix: np.ndarray, labels: np.ndarray, groups: int) -> np.ndarray:
    """The unit mean vector of each answer's phrasings."""
    sums = np.zeros((groups, matrix.shape[1]), dtype=np.float32)
    np.add.at(sums, labels, matrix)
    return sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-9)


def _worst_wrong(matrix: np.ndarray, labels: np.ndarray, centroids: np.ndarray, min_similarity: float) -> float:
    """The highest confidence of a phrasing's match to another answer's phrasings, 512 rows at a time."""
    worst, k = float("-inf"), min(CANDIDATES, len(matrix))
    for start in range(0, len(matrix), 512):
        sims = matrix[start:start + 512] @ matrix.T
        sims[labels[start:start + 512, None] == labels[None, :]] = -np.inf  # its own answer is out
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        for r, candidates in enumerate(top):
            found = sorted(((float(sims[r, c]), labels[c]) for c in candidates if np.isfinite(sims[r, c])),
                           reverse=True)
            if not found or found[0][0] < min_similarity:
                continue
            worst = max(worst, _wrong_confidence(found, matrix[start + r], centroids))
    return worst


def _wrong_confidence(found: list[tuple[float, int]], vector: np.ndarray, centroids: np.ndarray) -> float:
    """Return the confidence of the best of the wrong answers found near one curated phrasing."""
    scores = {}
    for similarity, group in found:  # the first of a group is its nearest phrasing
        if group not in scores:
            scores[group] = answer_score(similarity, float(centroids[group] @ vector))
    ranked = sorted(scores.values(), reverse=True)
    rival = ranked[1] if len(ranked) > 1 else found[-1][0]
    return confidence(ranked[0], rival)[1]


class CuratedMeasure:
    """The index's curated answers measured against themselves, again whenever they change (SemanticIndex mixes it in)."""

    def threshold_of(self, key: str, threshold: float | None = None) -> float:
        """Return the least confidence that serves an answer: lower for a curated answer of a sparse FAQ."""
        threshold = self.threshold if threshold is None else threshold
        if not key.startswith(CURATED):
            return threshold
        return min(threshold, max(self.threshold_floor, self.curated_wrong))

    def measure_curated(self, answer_keys: list[str], matrix: np.ndarray) -> float:
        """Return the most confident wrong match of the curated answers (see most_confident_wrong)."""
        return most_confident_wrong(answer_keys, matrix, self.min_similarity, self.ann_min_size)

    def remeasure(self, background: bool = False) -> None:
        """Measure the curated answers against themselves again if they changed since the last time.

        Until the new measure is in, curated answers get the threshold (never a floor measured on
        an FAQ that has changed since). `background` measures in a thread (the web: a request that
        refreshes the index does not wait for it; 10 000 curated phrasings take about 2 s).
        """
        if self.threshold_floor >= self.threshold:
            return
        curated = self.curated_rows
        if self._measured == (curated, self.epoch):
            return
        self._measured = (curated, self.epoch)
        self.curated_wrong = float("inf")
        self._generation += 1
        snapshot = (list(self.answer_keys), self.vectors.rows(len(self.ids)) if self.vectors is not None else None)
        self._start_measure((*snapshot, curated, self._generation), background)

    def _start_measure(self, args: tuple, background: bool) -> None:
        if background:
            self._measuring = threading.Thread(target=self._measure, args=args, daemon=True, name="semantic-measure")
            self._measuring.start()
        else:
            self._measure(*args)

    def settle(self, timeout: float | None = None) -> None:
        """Wait for a measure running in the background to be in."""
        if self._measuring is not None:
            self._measuring.join(timeout)

    def _measure(self, answer_keys, matrix, curated: int, generation: int) -> None:
        wrong = self.measure_curated(answer_keys, matrix) if matrix is not None else float("-inf")
        if generation != self._generation:
            return  # the FAQ changed meanwhile: the newer measure decides
        self.curated_wrong = wrong
        if curated:
            log.info("semantic index: %d curated phrasings; their most confident wrong match %.3f, so curated "
                     "answers are served from confidence %.3f", curated, wrong, self.threshold_of(CURATED))
