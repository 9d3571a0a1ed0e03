"""The semantic index: cached questions' embeddings in memory, refreshed from SQL, searched for an ask.

The decision to serve one of their answers is in decision.py; how low a sparse FAQ's curated answers
may go is measured in curated.py; the guards that veto a near miss are in guards.py.
"""

import logging
import threading

import numpy as np
import redis

from precache import keys
from precache.app_context import AppContext
from precache.evidence import Evidence
from precache.language import KOREAN, language_of
from precache.semantic import calibration, decision
from precache.semantic.calibration import Calibration
from precache.semantic.curated import CuratedMeasure
from precache.semantic.decision import CANDIDATES, SemanticMatch
from precache.semantic.embedders import embedding_key
from precache.semantic.guards import Details, compatible, details
from precache.semantic.store import CURATED, answer_groups, load_embeddings
from precache.semantic.vectors import VectorSearch

log = logging.getLogger(__name__)


class SemanticIndex(CuratedMeasure):
    """Cached questions and their vectors; one per web process, refreshed from SQL as answers arrive."""

    def __init__(self, threshold=0.97, min_similarity=0.75, guards=True, ann_min_size=20000, model="",
                 threshold_floor=0.97, evidence: Evidence | None = None, korean: Calibration | None = None):
        self.threshold, self.min_similarity, self.guards = threshold, min_similarity, guards
        # Korean asks are decided with their own embedder's cut-offs (calibration.py); None: the same as English.
        self.korean = korean
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
        # The Redis counters (version, epoch, feedback, feedback epoch) last loaded.
        self._state: tuple = (None, None, None, None)
        self._refresh_lock = threading.Lock()

    def regroup(self, sessions) -> None:
        """Read the answer key of every cached question again and rebuild the answers' centroids.

        Keys change in place and the centroids are swapped in whole, so a search running meanwhile
        sees the old or the new grouping of each question, never a half-built centroid.
        """
        if self.vectors is None:
            return
        groups = answer_groups(sessions, list(set(self.ids)))
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
                   settings.semantic_ann_min_size, embedding_key(settings), settings.semantic_threshold_floor,
                   Evidence.from_settings(settings), calibration.for_language(settings, KOREAN))

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

    def answer_score(self, key: str, vector: np.ndarray, nearest: float) -> float:
        """Return how close an ask is to one answer: its nearest phrasing's similarity and their centroid's, mixed."""
        centroid = self._sums[key]
        to_centroid = float(centroid @ vector) / max(float(np.linalg.norm(centroid)), 1e-9)
        return decision.answer_score(nearest, to_centroid)

    def _scored(self, vector: np.ndarray):
        """Return the candidates near an ask: (positions, similarities, each answer's phrasings, each answer's score)."""
        positions, sims = self.search(vector)
        phrasings: dict[str, list[tuple[int, float]]] = {}
        for p, s in zip(positions, sims):
            phrasings.setdefault(self.answer_keys[p], []).append((p, float(s)))
        # An answer's nearest phrasing is among the candidates whenever any of its phrasings is.
        scores = {key: self.answer_score(key, vector, found[0][1]) for key, found in phrasings.items()}
        return positions, sims, phrasings, scores

    def _confidence(self, key: str, scores: dict[str, float], sims, vector: np.ndarray,
                    tenant: str) -> tuple[float, float]:
        """Return (margin, confidence) of one answer among the scored candidates."""
        # A curated answer's rivals are the other curated answers: every miss near an FAQ entry gets a
        # generated answer of its own, and those would otherwise crowd the entry out of every later
        # paraphrase. The decision is then the one calibrated on the FAQ alone; a generated answer that
        # is nearer than the entry is the best match itself and must clear every rival.
        curated = key.startswith(CURATED)
        rivals = [score for other, score in scores.items()
                  if other != key and (not curated or other.startswith(CURATED))]
        # Where askers said this answer does not fit, that phrasing is a rival too (precache.evidence).
        negative = self.evidence.rival(key, vector, tenant)
        if negative is not None:
            rivals.append(negative)
        # No rival among the candidates: if the index holds more, the farthest candidate bounds the margin.
        unseen = float(sims[-1]) if len(self) > len(sims) else -1.0
        return decision.confidence(scores[key], max(rivals, default=unseen))

    def best(self, question: str, vector: np.ndarray, guards: bool | None = None, tenant: str = "",
             qhash: str | None = None) -> SemanticMatch | None:
        """Return the best answer's nearest phrasing that passes the guards, with margin and confidence."""
        guards = self.guards if guards is None else guards
        positions, sims, phrasings, scores = self._scored(vector)
        allowed = self._allowed(phrasings, details(question) if guards else None, self.evidence.vetoed(tenant, qhash))
        if not allowed:
            return None
        # Vetoed answers stay rivals: when the guard was wrong about the nearest one, the next one is
        # most likely a wrong answer, and its margin over the vetoed one is negative.
        key = max(allowed, key=scores.get)
        chosen, similarity = allowed[key][0]
        margin, confidence = self._confidence(key, scores, sims, vector, tenant)
        threshold = self.evidence.threshold(key, self._base_threshold(key, question), tenant)
        return SemanticMatch(self.ids[chosen], self.qhashes[chosen], self.texts[chosen], similarity, margin,
                             confidence, threshold, key)

    def korean_calibration(self, question: str) -> Calibration | None:
        """The Korean calibration when the question is Korean and Korean has one of its own, else None."""
        return self.korean if self.korean is not None and language_of(question) == KOREAN else None

    def _base_threshold(self, key: str, question: str) -> float:
        """The least confidence that serves an answer for this question, before what askers taught."""
        korean = self.korean_calibration(question)
        return self.threshold_of(key) if korean is None else korean.threshold

    def min_similarity_for(self, question: str) -> float:
        """The least cosine of a hit for this question, in its language's embedder."""
        korean = self.korean_calibration(question)
        return self.min_similarity if korean is None else korean.min_similarity

    def _allowed(self, phrasings: dict, asked, vetoed) -> dict:
        """The answers' phrasings the guards pass (`asked` None: guards off), without the answers vetoed."""
        allowed = {key: [(p, s) for p, s in found if asked is None or self._vetoed(asked, p) is None]
                   for key, found in phrasings.items() if key not in vetoed}
        return {key: found for key, found in allowed.items() if found}

    def match(self, question: str, vector: np.ndarray, tenant: str = "", qhash: str | None = None
              ) -> SemanticMatch | None:
        """Return the cached question whose answer may be served for `question`, or None."""
        found = self.best(question, vector, tenant=tenant, qhash=qhash)
        if found is None or not decision.serves(found.similarity, found.confidence, found.threshold,
                                                self.min_similarity_for(question)):
            return None
        return found

    def nearest_answers(self, vector: np.ndarray, n: int = CANDIDATES, tenant: str = "") -> list[SemanticMatch]:
        """Return the nearest phrasing of each answer near an ask, best answer first, with its confidence."""
        positions, sims, phrasings, scores = self._scored(vector)
        found = []
        for key in sorted(scores, key=scores.get, reverse=True)[:n]:
            position, similarity = phrasings[key][0]
            margin, confidence = self._confidence(key, scores, sims, vector, tenant)
            found.append(SemanticMatch(self.ids[position], self.qhashes[position], self.texts[position], similarity,
                                       margin, confidence, self.evidence.threshold(key, self.threshold_of(key), tenant),
                                       key))
        return found

    def refresh(self, ctx: AppContext) -> int:
        """Load embeddings stored since the last load if the Redis version moved; return how many."""
        try:  # the index's (version, epoch, feedback version)
            state = tuple(ctx.redis.mget(keys.semantic_version(), keys.semantic_epoch(), keys.feedback_version(),
                                         keys.feedback_epoch()))
        except redis.RedisError as exc:
            log.warning("semantic index not refreshed, Redis unavailable: %s", exc)
            return 0
        if self._fresh(state):
            return 0
        with self._refresh_lock:
            if self._fresh(state):
                return 0
            return self._load_since(ctx.sessions, self.model or embedding_key(ctx.settings), state)

    def _fresh(self, state: tuple) -> bool:
        return state == self._state and self.version is not None

    def _load_since(self, sessions, model: str, state: tuple) -> int:
        """Catch up with the stored state (groups, new rows, feedback); return how many rows were added."""
        from precache.feedback import load_evidence

        version, epoch, feedback, _ = state
        if epoch != self.epoch:  # questions changed groups (linked paraphrases): read every group again
            self.regroup(sessions)
            self.epoch = epoch
        rows, added = load_embeddings(sessions, model, self.last_row), 0
        if rows:
            ids, qhashes, texts, vectors, groups, last = rows
            self.add(ids, qhashes, texts, vectors, groups)
            self.last_row, added = last, len(ids)
        self.remeasure(background=True)
        if state[3] != self._state[3]:  # feedback rows were deleted: what is left is read again from the start
            evidence = self.evidence.fresh()
            while load_evidence(sessions, evidence, model):
                pass
            self.evidence = evidence
        elif feedback != self._state[2] or self._state[2] is None:
            while load_evidence(sessions, self.evidence, model):
                pass
        self.version = version  # read before the rows: a write after it moves the version again
        self._state = state
        return added
