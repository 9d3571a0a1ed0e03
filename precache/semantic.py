"""The semantic tier: an index of cached questions' embeddings, and the decision to serve a neighbour's answer.

Decisions are made per *answer*, not per cached question: the cached questions that share an answer
(an FAQ entry's phrasings) vote together. An answer's score mixes its nearest phrasing's cosine
similarity (weight NEAREST_WEIGHT) with the similarity to the centroid of all its phrasings.
Confidence is that score plus MARGIN_WEIGHT times its margin (capped at MARGIN_CAP) over the best
*other* answer: a question that sits between two answers is ambiguous, however similar it is to
either. An answer is served when its confidence clears the threshold and one of its phrasings passes
the guards. The constants and the default threshold (0.98) are the ones, of those tried, that serve
the most while keeping wrong hits <= 0.5 % on every one of 20 sets at once: 18 banking77 caches (3, 5
and 8 phrasings per intent, three seeds, all intents answered or a quarter of them left unanswered,
their queries then asking as near-domain out-of-scope questions), StackFAQ and GPTCache's mock data
(0.977 is the edge; bench/semantic_quality.py prints the sets)."""

import logging
import threading
from dataclasses import dataclass

import numpy as np
import redis

from precache import keys
from precache.guards import Details, compatible, details
from precache.semantic_store import answer_groups, answer_key, index_question, index_questions, load_embeddings
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


class SemanticIndex:
    """Cached questions and their vectors; one per web process, refreshed from SQL as answers arrive."""

    def __init__(self, threshold=0.98, min_similarity=0.75, guards=True, ann_min_size=20000, model=""):
        self.threshold, self.min_similarity, self.guards = threshold, min_similarity, guards
        self.ann_min_size, self.model = ann_min_size, model
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

    @classmethod
    def from_settings(cls, settings) -> "SemanticIndex":
        return cls(settings.semantic_threshold, settings.semantic_min_similarity, settings.semantic_guards,
                   settings.semantic_ann_min_size, settings.embedding_model)

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

    def answer_score(self, key: str, vector: np.ndarray, nearest: float) -> float:
        """Return how close an ask is to one answer: its nearest phrasing's similarity and their centroid's, mixed."""
        centroid = self._sums[key]
        to_centroid = float(centroid @ vector) / max(float(np.linalg.norm(centroid)), 1e-9)
        return NEAREST_WEIGHT * nearest + (1 - NEAREST_WEIGHT) * to_centroid

    def best(self, question: str, vector: np.ndarray, guards: bool | None = None) -> SemanticMatch | None:
        """Return the best answer's nearest phrasing that passes the guards, with margin and confidence."""
        guards = self.guards if guards is None else guards
        positions, sims = self.search(vector)
        asked = details(question) if guards else None
        phrasings: dict[str, list[tuple[int, float]]] = {}
        for p, s in zip(positions, sims):
            phrasings.setdefault(self.answer_keys[p], []).append((p, float(s)))
        # An answer's nearest phrasing is among the candidates whenever any of its phrasings is.
        scores = {key: self.answer_score(key, vector, found[0][1]) for key, found in phrasings.items()}
        allowed = {key: [(p, s) for p, s in found if not guards or self._vetoed(asked, p) is None]
                   for key, found in phrasings.items()}
        allowed = {key: found for key, found in allowed.items() if found}
        if not allowed:
            return None
        key = max(allowed, key=scores.get)
        chosen, similarity = allowed[key][0]
        # Vetoed answers stay rivals: when the guard was wrong about the nearest one, the next one is
        # most likely a wrong answer, and its margin over the vetoed one is negative.
        rivals = [score for other, score in scores.items() if other != key]
        # No rival among the candidates: if the index holds more, the farthest candidate bounds the margin.
        unseen = float(sims[-1]) if len(self) > len(sims) else -1.0
        margin = scores[key] - max(rivals, default=unseen)
        confidence = scores[key] + MARGIN_WEIGHT * min(margin, MARGIN_CAP)
        return SemanticMatch(self.ids[chosen], self.qhashes[chosen], self.texts[chosen], similarity, margin,
                             confidence)

    def match(self, question: str, vector: np.ndarray) -> SemanticMatch | None:
        """Return the cached question whose answer may be served for `question`, or None."""
        found = self.best(question, vector)
        if found is None or found.similarity < self.min_similarity or found.confidence < self.threshold:
            return None
        return found

    def near_misses(self, vector: np.ndarray, n: int = 3, floor: float = 0.5) -> list[SemanticMatch]:
        """Return up to n cached questions similar enough to suggest ("did you mean ...?")."""
        positions, sims = self.search(vector, n)
        return [SemanticMatch(self.ids[p], self.qhashes[p], self.texts[p], float(s))
                for p, s in zip(positions, sims) if s >= floor]

    def refresh(self, ctx) -> int:
        """Load embeddings stored since the last load if the Redis version moved; return how many."""
        try:
            version, epoch = ctx.redis.mget(keys.semantic_version(), keys.semantic_epoch())
        except redis.RedisError as exc:
            log.warning("semantic index not refreshed, Redis unavailable: %s", exc)
            return 0
        if version == self.version and self.version is not None and epoch == self.epoch:
            return 0
        with self._refresh_lock:
            if version == self.version and self.version is not None and epoch == self.epoch:
                return 0
            if epoch != self.epoch:  # questions changed groups (linked paraphrases): read every group again
                self.regroup(ctx)
                self.epoch = epoch
            rows = load_embeddings(ctx, self.model or ctx.settings.embedding_model, self.last_row)
            if rows:
                ids, qhashes, texts, vectors, groups, last = rows
                self.add(ids, qhashes, texts, vectors, groups)
                self.last_row = last
            self.version = version  # read before the rows: a write after it moves the version again
            return len(rows[0]) if rows else 0

