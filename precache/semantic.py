"""The semantic tier: an index of cached questions' embeddings, and the decision to serve a neighbour's answer.

Decisions are made per *answer*, not per cached question: the cached questions that share an answer
(an FAQ entry's phrasings) vote together. An answer's score mixes its nearest phrasing's cosine
similarity (weight NEAREST_WEIGHT) with the similarity to the centroid of all its phrasings.
Confidence is that score plus MARGIN_WEIGHT times its margin (capped at MARGIN_CAP) over the best
*other* answer: a question that sits between two answers is ambiguous, however similar it is to
either. A curated answer's rivals are the other curated answers only: the answers the workers
generate for misses next to an FAQ entry would otherwise take its margin from every later paraphrase
(steady-state workload 68 % -> 77 % instant, 0 wrong; docs/benchmarks.md).
An answer is served when its confidence clears the threshold and one of its phrasings passes
the guards. The constants and the default threshold (0.97) are the ones, of those tried, that serve
the most while keeping wrong hits <= 0.5 % on every one of 20 sets at once: 18 banking77 caches (3, 5
and 8 phrasings per intent, three seeds, all intents answered or a quarter of them left unanswered,
their queries then asking as near-domain out-of-scope questions), StackFAQ and GPTCache's mock data
(0.966 is the edge with the guards on; bench/semantic_quality.py prints the sets).

That threshold is set by the densest caches, where intents sit close together. With a threshold
floor below the threshold (SEMANTIC_THRESHOLD_FLOOR; off by default) the curated answers (an
imported FAQ) are also checked against themselves: each curated phrasing is asked with its own
answer taken out, and the most confident of those (necessarily wrong) matches is how confident a
wrong match can look in this FAQ. Curated answers are then served from that confidence, kept between
the floor and the threshold: an FAQ whose entries are far apart gets more hits (StackFAQ at floor
0.9: 34 % -> 43 %, wrong hits <= 0.07 % with a quarter of its entries missing and 1500 out-of-scope
askers), a dense one keeps the threshold. It is off by default because the FAQ alone cannot see the
askers: with many near-domain questions it has no entry for, a sparse FAQ's wrong hits doubled."""

import logging
import threading
from dataclasses import dataclass

import numpy as np
import redis

from precache import keys
from precache.evidence import Evidence
from precache.guards import Details, compatible, details
from precache.semantic_store import (CURATED, answer_groups, answer_key, index_question, index_questions,
                                     load_embeddings)
from precache.vectors import VectorSearch

log = logging.getLogger(__name__)
NEAREST_WEIGHT = 0.85
MARGIN_WEIGHT = 0.7
MARGIN_CAP = 0.3
CANDIDATES = 10
__all__ = ["SemanticIndex", "SemanticMatch", "answer_key", "compatible", "index_question", "index_questions"]


@dataclass(frozen=True)
class SemanticMatch:
    """A cached question close to the asked one, with how sure the tier is of it."""

    question_id: int
    qhash: str
    matched_question: str
    similarity: float
    margin: float = 0.0
    confidence: float = 0.0
    threshold: float = 0.0  # the least confidence that serves this answer (lower for a sparse FAQ's curated answers)
    key: str = ""  # the answer's key: cached questions that share an answer share it


class SemanticIndex:
    """Cached questions and their vectors; one per web process, refreshed from SQL as answers arrive."""

    def __init__(self, threshold=0.97, min_similarity=0.75, guards=True, ann_min_size=20000, model="",
                 threshold_floor=0.97, evidence: Evidence | None = None):
        self.threshold, self.min_similarity, self.guards = threshold, min_similarity, guards
        self.ann_min_size, self.model = ann_min_size, model
        self.threshold_floor = threshold_floor
        self.evidence = evidence if evidence is not None else Evidence()
        # The most confident wrong match of the curated answers against themselves, once measured
        # (+inf: not measured, or too many to measure: the threshold applies to every answer).
        self.curated_wrong = float("inf")
        self.curated_rows = 0
        self._measured: tuple[int, bytes | None] | None = None
        self._generation = 0
        self._measuring: threading.Thread | None = None
        self.ids: list[int] = []
        self.qhashes: list[str] = []
        self.texts: list[str] = []
        self.answer_keys: list[str] = []
        self._details: dict[int, Details] = {}
        self._sums: dict[str, np.ndarray] = {}  # answer key -> sum of its phrasings' vectors (the centroid)
        self.vectors: VectorSearch | None = None
        self.version: bytes | None = None
        self.epoch: bytes | None = None
        self.last_row = 0
        self._state: tuple = (None, None, None)  # the Redis counters (version, epoch, feedback) last loaded
        self._refresh_lock = threading.Lock()

    def regroup(self, ctx) -> None:
        """Read the answer key of every cached question again and rebuild the answers' centroids.

        Keys change in place and the centroids are swapped in whole, so a search running meanwhile
        sees the old or the new grouping of each question, never a half-built centroid.
        """
        if self.vectors is None:
            return
        groups = answer_groups(ctx, list(set(self.ids)))
        matrix = self.vectors.rows(len(self.ids))
        sums: dict[str, np.ndarray] = {}
        for position, question_id in enumerate(self.ids):
            key = groups.get(question_id, self.answer_keys[position])
            sums[key] = sums[key] + matrix[position] if key in sums else matrix[position].copy()
        self._sums = {**self._sums, **sums}
        for position, question_id in enumerate(self.ids):
            self.answer_keys[position] = groups.get(question_id, self.answer_keys[position])
        self.curated_rows = sum(key.startswith(CURATED) for key in self.answer_keys)

    @classmethod
    def from_settings(cls, settings) -> "SemanticIndex":
        return cls(settings.semantic_threshold, settings.semantic_min_similarity, settings.semantic_guards,
                   settings.semantic_ann_min_size, settings.embedding_model, settings.semantic_threshold_floor,
                   Evidence.from_settings(settings))

    def __len__(self) -> int:
        return len(self.vectors) if self.vectors is not None else 0

    def add(self, ids, qhashes, texts, vectors: np.ndarray, answer_keys=None) -> None:
        """Add cached questions; `answer_keys` groups those that share an answer (default: none do)."""
        vectors = np.asarray(vectors, dtype=np.float32)
        if self.vectors is None:
            self.vectors = VectorSearch(vectors.shape[1], self.ann_min_size)
        self.ids.extend(ids)
        self.qhashes.extend(qhashes)
        self.texts.extend(texts)
        answer_keys = list(answer_keys if answer_keys is not None else qhashes)
        for key, vector in zip(answer_keys, vectors):  # a new array each time: readers never see a half sum
            self._sums[key] = self._sums[key] + vector if key in self._sums else vector.copy()
        self.answer_keys.extend(answer_keys)
        self.curated_rows += sum(key.startswith(CURATED) for key in answer_keys)
        self.vectors.add(vectors)  # last: a search sees only rows whose metadata is in place

    def search(self, vector: np.ndarray, k: int = CANDIDATES) -> tuple[np.ndarray, np.ndarray]:
        """Return (positions, similarities) of the k nearest cached questions."""
        if not len(self):
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        return self.vectors.search(vector, k)

    def _vetoed(self, asked: Details, position: int) -> str | None:
        if position not in self._details:
            self._details[position] = details(self.texts[position])
        return compatible(asked, self._details[position])

    def threshold_of(self, key: str, threshold: float | None = None) -> float:
        """Return the least confidence that serves an answer: lower for a curated answer of a sparse FAQ."""
        threshold = self.threshold if threshold is None else threshold
        if not key.startswith(CURATED):
            return threshold
        return min(threshold, max(self.threshold_floor, self.curated_wrong))

    def measure_curated(self, answer_keys: list[str], matrix: np.ndarray) -> float:
        """Ask every curated phrasing with its own answer left out; return the highest confidence of those wrong matches.

        `answer_keys` and `matrix` are the index's keys and vectors (a snapshot). Searched like `best` (the nearest CANDIDATES phrasings, guards off, so never less than a real
        ask would get), among curated phrasings only: generated answers are one per asked question,
        and a paraphrase answered twice is not a wrong match. -inf when no wrong match reaches the
        minimum similarity; +inf when there are more curated phrasings than `ann_min_size` (not
        measured, the threshold stays).
        """
        rows = [p for p, key in enumerate(answer_keys) if key.startswith(CURATED)]
        if len(rows) > self.ann_min_size:
            return float("inf")
        if not rows:
            return float("-inf")
        matrix = matrix[rows]
        keys = [answer_keys[p] for p in rows]
        group_of = {key: g for g, key in enumerate(dict.fromkeys(keys))}
        labels = np.array([group_of[key] for key in keys])
        sums = np.zeros((len(group_of), matrix.shape[1]), dtype=np.float32)
        np.add.at(sums, labels, matrix)
        centroids = sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-9)
        worst, k = float("-inf"), min(CANDIDATES, len(rows))
        for start in range(0, len(rows), 512):
            sims = matrix[start:start + 512] @ matrix.T
            sims[labels[start:start + 512, None] == labels[None, :]] = -np.inf  # its own answer is out
            top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
            for r, candidates in enumerate(top):
                found = sorted(((float(sims[r, c]), labels[c]) for c in candidates if np.isfinite(sims[r, c])),
                               reverse=True)
                if not found or found[0][0] < self.min_similarity:
                    continue
                vector, scores = matrix[start + r], {}
                for similarity, group in found:  # the first of a group is its nearest phrasing
                    if group not in scores:
                        to_centroid = float(centroids[group] @ vector)
                        scores[group] = NEAREST_WEIGHT * similarity + (1 - NEAREST_WEIGHT) * to_centroid
                ranked = sorted(scores.values(), reverse=True)
                rival = ranked[1] if len(ranked) > 1 else found[-1][0]
                worst = max(worst, ranked[0] + MARGIN_WEIGHT * min(ranked[0] - rival, MARGIN_CAP))
        return worst

    def answer_score(self, key: str, vector: np.ndarray, nearest: float) -> float:
        """Return how close an ask is to one answer: its nearest phrasing's similarity and their centroid's, mixed."""
        centroid = self._sums[key]
        to_centroid = float(centroid @ vector) / max(float(np.linalg.norm(centroid)), 1e-9)
        return NEAREST_WEIGHT * nearest + (1 - NEAREST_WEIGHT) * to_centroid

    def _scored(self, vector: np.ndarray):
        """Return the candidates near an ask: (positions, similarities, each answer's phrasings, each answer's score)."""
        positions, sims = self.search(vector)
        phrasings: dict[str, list[tuple[int, float]]] = {}
        for p, s in zip(positions, sims):
            phrasings.setdefault(self.answer_keys[p], []).append((p, float(s)))
        # An answer's nearest phrasing is among the candidates whenever any of its phrasings is.
        scores = {key: self.answer_score(key, vector, found[0][1]) for key, found in phrasings.items()}
        return positions, sims, phrasings, scores

    def _confidence(self, key: str, scores: dict[str, float], sims, vector: np.ndarray) -> tuple[float, float]:
        """Return (margin, confidence) of one answer among the scored candidates."""
        # A curated answer's rivals are the other curated answers: every miss near an FAQ entry gets a
        # generated answer of its own, and those would otherwise crowd the entry out of every later
        # paraphrase. The decision is then the one calibrated on the FAQ alone; a generated answer that
        # is nearer than the entry is the best match itself and must clear every rival.
        curated = key.startswith(CURATED)
        rivals = [score for other, score in scores.items()
                  if other != key and (not curated or other.startswith(CURATED))]
        # Where askers said this answer does not fit, that phrasing is a rival too (precache.evidence).
        negative = self.evidence.rival(key, vector)
        if negative is not None:
            rivals.append(negative)
        # No rival among the candidates: if the index holds more, the farthest candidate bounds the margin.
        unseen = float(sims[-1]) if len(self) > len(sims) else -1.0
        margin = scores[key] - max(rivals, default=unseen)
        return margin, scores[key] + MARGIN_WEIGHT * min(margin, MARGIN_CAP)

    def best(self, question: str, vector: np.ndarray, guards: bool | None = None, tenant: str = "",
             qhash: str | None = None) -> SemanticMatch | None:
        """Return the best answer's nearest phrasing that passes the guards, with margin and confidence."""
        guards = self.guards if guards is None else guards
        positions, sims, phrasings, scores = self._scored(vector)
        asked = details(question) if guards else None
        vetoed = self.evidence.vetoed(tenant, qhash)
        allowed = {key: [(p, s) for p, s in found if not guards or self._vetoed(asked, p) is None]
                   for key, found in phrasings.items() if key not in vetoed}
        allowed = {key: found for key, found in allowed.items() if found}
        if not allowed:
            return None
        # Vetoed answers stay rivals: when the guard was wrong about the nearest one, the next one is
        # most likely a wrong answer, and its margin over the vetoed one is negative.
        key = max(allowed, key=scores.get)
        chosen, similarity = allowed[key][0]
        margin, confidence = self._confidence(key, scores, sims, vector)
        threshold = self.evidence.threshold(key, self.threshold_of(key))
        return SemanticMatch(self.ids[chosen], self.qhashes[chosen], self.texts[chosen], similarity, margin,
                             confidence, threshold, key)

    def match(self, question: str, vector: np.ndarray, tenant: str = "", qhash: str | None = None
              ) -> SemanticMatch | None:
        """Return the cached question whose answer may be served for `question`, or None."""
        found = self.best(question, vector, tenant=tenant, qhash=qhash)
        if found is None or found.similarity < self.min_similarity or found.confidence < found.threshold:
            return None
        return found

    def nearest_answers(self, vector: np.ndarray, n: int = CANDIDATES) -> list[SemanticMatch]:
        """Return the nearest phrasing of each answer near an ask, best answer first, with its confidence."""
        positions, sims, phrasings, scores = self._scored(vector)
        found = []
        for key in sorted(scores, key=scores.get, reverse=True)[:n]:
            position, similarity = phrasings[key][0]
            margin, confidence = self._confidence(key, scores, sims, vector)
            found.append(SemanticMatch(self.ids[position], self.qhashes[position], self.texts[position], similarity,
                                       margin, confidence, self.evidence.threshold(key, self.threshold_of(key)), key))
        return found

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
        if background:
            self._measuring = threading.Thread(target=self._measure, args=(*snapshot, curated, self._generation),
                                               daemon=True, name="semantic-measure")
            self._measuring.start()
        else:
            self._measure(*snapshot, curated, self._generation)

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

    def refresh(self, ctx) -> int:
        """Load embeddings stored since the last load if the Redis version moved; return how many."""
        try:
            version, epoch, feedback = ctx.redis.mget(keys.semantic_version(), keys.semantic_epoch(),
                                                      keys.feedback_version())
        except redis.RedisError as exc:
            log.warning("semantic index not refreshed, Redis unavailable: %s", exc)
            return 0
        state = (version, epoch, feedback)
        if state == self._state and self.version is not None:
            return 0
        with self._refresh_lock:
            if state == self._state and self.version is not None:
                return 0
            if epoch != self.epoch:  # questions changed groups (linked paraphrases): read every group again
                self.regroup(ctx)
                self.epoch = epoch
            rows = load_embeddings(ctx, self.model or ctx.settings.embedding_model, self.last_row)
            if rows:
                ids, qhashes, texts, vectors, groups, last = rows
                self.add(ids, qhashes, texts, vectors, groups)
                self.last_row = last
            self.remeasure(background=True)
            if feedback != self._state[2] or self._state[2] is None:
                from precache.feedback import load_evidence

                while load_evidence(ctx, self.evidence, self.model or ctx.settings.embedding_model):
                    pass
            self.version = version  # read before the rows: a write after it moves the version again
            self._state = state
            return len(rows[0]) if rows else 0

