"""What askers taught the semantic tier, held in memory per web process: negatives, vetoes, per-answer thresholds.

Every feedback row (precache.feedback) says, for one asked phrasing, which of the answers shown fitted
and with what confidence each was shown. Three things are read from them:

- **Negatives.** A phrasing whose asker said an answer does not fit (or that none of those shown did)
  is a point where that answer is wrong. It stands as a rival of the answer in the decision: the
  answer's margin is taken over the nearest such point as over any other answer, so a question that
  sits closer to a known wrong case than to the answer's own phrasings is not served it.
- **Vetoes.** A phrasing told that an answer does not fit is never served it again from the semantic
  tier (in the tenant that said so).
- **Per-answer thresholds** (the idea of vCache, with this estimator). Each answer gathers observations
  (confidence shown, fitted or not). Its threshold starts at the calibrated global one (the prior).
  It goes down to just above (by `gap`) the most confident observation where it did *not* fit, and
  never below `floor`, once at least `support` observations where it did fit lie at or above that
  point. So on the asks observed around an answer, serving from its threshold would have served no
  wrong answer and at least `support` right ones; an answer nobody has given evidence for keeps the
  global rule, whose wrong-hit rate is bounded on the calibration sets (<= 0.5 %). A new wrong
  observation above the threshold raises it again at once.

All of it is per tenant: what askers of one tenant said moves only that tenant's decisions. And it is
bounded per asker: one asker's word on a phrasing counts once, and one asker adds at most
`per_asker` negatives against an answer, however many phrasings they reject it for. A *protected*
answer (curated or pinned: precache.feedback says which) gathers observations for its threshold, which
never rises above the global rule, and no vetoes; its negatives stand as rivals only once
`corroboration` distinct askers gave them: no one asker takes it away from others.
"""

import threading
from collections import defaultdict
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Observation:
    confidence: float
    fitted: bool


class Evidence:
    """The feedback seen so far, as the decision of the semantic tier uses it."""

    def __init__(self, floor: float = 0.93, gap: float = 0.03, support: int = 2, enabled: bool = True,
                 per_asker: int = 3, corroboration: int = 2):
        self.floor, self.gap, self.support, self.enabled, self.per_asker = floor, gap, support, enabled, per_asker
        self.corroboration = corroboration
        self.last_row = 0
        # Keyed by (tenant, answer key): one tenant's askers never move another's decisions.
        self.observations: dict[tuple[str, str], list[Observation]] = defaultdict(list)
        self.vetoes: dict[tuple[str, str], set[str]] = defaultdict(set)  # (tenant, phrasing hash) -> answer keys
        self._vectors = np.zeros((0, 0), dtype=np.float32)
        self._rows: dict[tuple[str, str], list[int]] = {}  # (tenant, answer key) -> rows of the negatives against it
        self._count = 0
        self._thresholds: dict[tuple[str, str], float] = {}
        self._heard: set[tuple[str, str, str]] = set()  # (asker, tenant, phrasing hash): one word each
        self._negatives_of: dict[tuple[str, str, str], int] = defaultdict(int)  # (asker, tenant, key) -> count
        self._protected: set[tuple[str, str]] = set()  # (tenant, key)s of curated and pinned answers
        self._against: dict[tuple[str, str], set[str]] = defaultdict(set)  # (tenant, key) -> askers of negatives
        self._lock = threading.Lock()

    def fresh(self) -> "Evidence":
        """An empty evidence store with the same rules (to load again from the feedback rows left)."""
        return Evidence(self.floor, self.gap, self.support, self.enabled, self.per_asker, self.corroboration)

    @classmethod
    def from_settings(cls, settings) -> "Evidence":
        return cls(settings.learn_floor, settings.learn_gap, settings.learn_support, settings.learn)

    def add(self, vector: np.ndarray | None, tenant: str, qhash: str, shown: dict[str, float],
            fitted: str | None, rejected: str | None, asker: str = "", protected=frozenset()) -> None:
        """Take in one feedback: the answer keys shown with their confidence, the one that fitted or the one rejected.

        `fitted` None and `rejected` None: none of those shown fits. An asker's later word on a phrasing
        they spoke of already is not counted again.
        """
        with self._lock:
            if (asker, tenant, qhash) in self._heard:
                return
            self._heard.add((asker, tenant, qhash))
            self._observe(tenant, shown, fitted, rejected)
            if fitted is not None:
                return
            if rejected is not None and rejected not in protected:
                self.vetoes[(tenant, qhash)].add(rejected)
            against = [key for key in ([rejected] if rejected is not None else shown)
                       if self._negatives_of[(asker, tenant, key)] < self.per_asker]
            if vector is not None and len(vector) and against:
                for key in against:
                    self._negatives_of[(asker, tenant, key)] += 1
                    self._against[(tenant, key)].add(asker)
                    if key in protected:
                        self._protected.add((tenant, key))
                self._add_vector(vector, [(tenant, key) for key in against])

    def _observe(self, tenant: str, shown: dict[str, float], fitted: str | None, rejected: str | None) -> None:
        """Note whether each answer shown fitted, at its confidence (under the lock)."""
        for key, confidence in shown.items():
            if rejected is None or key == rejected:  # a rejection says nothing of the others shown
                self.observations[(tenant, key)].append(Observation(float(confidence), key == fitted))
                self._thresholds.pop((tenant, key), None)

    def _add_vector(self, vector: np.ndarray, against: list[tuple[str, str]]) -> None:
        """Keep the asked phrasing's vector as evidence against these (tenant, answer key)s (under the lock)."""
        row = np.asarray(vector, dtype=np.float32).ravel()
        if self._count == len(self._vectors):  # full: twice the room, so each negative costs O(1) on average
            grown = np.zeros((max(64, 2 * self._count), len(row)), dtype=np.float32)
            if self._count:
                grown[:self._count] = self._vectors[:self._count]
            self._vectors = grown  # published before the rows that point into it
        self._vectors[self._count] = row
        for key in against:  # a new list each time: a reader holds the old one or the new one
            self._rows[key] = [*self._rows.get(key, ()), self._count]
        self._count += 1

    def rival(self, key: str, vector: np.ndarray, tenant: str = "") -> float | None:
        """Return the similarity of the nearest phrasing where this answer was said not to fit, if any."""
        rows = self._rows.get((tenant, key)) if self.enabled else None
        if not rows or ((tenant, key) in self._protected and len(self._against[(tenant, key)]) < self.corroboration):
            return None
        return float(np.max(self._vectors[rows] @ vector))  # rows only ever point below the stacked size

    def vetoed(self, tenant: str, qhash: str | None) -> set[str]:
        """Return the answer keys this phrasing was told do not fit it."""
        if not self.enabled or qhash is None:
            return set()
        return self.vetoes.get((tenant, qhash), set())

    def threshold(self, key: str, prior: float, tenant: str = "") -> float:
        """Return the least confidence that serves this answer, from its observations and the global prior."""
        if not self.enabled:
            return prior
        found = self._thresholds.get((tenant, key))
        if found is None:
            found = self._thresholds[(tenant, key)] = self._fit(self.observations.get((tenant, key), ()), prior)
        return min(prior, found)

    def _fit(self, observed, prior: float) -> float:
        wrong = max((o.confidence for o in observed if not o.fitted), default=float("-inf"))
        candidate = max(self.floor, wrong + self.gap)
        right = sum(o.fitted and o.confidence >= candidate for o in observed)
        return candidate if right >= self.support and candidate < prior else prior
