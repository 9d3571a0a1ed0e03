"""The web's side of the semantic tier: one index and one embedder per process, used by the ladder."""

import logging
import threading
from collections import OrderedDict

import numpy as np
from sqlalchemy.exc import SQLAlchemyError

from precache.app_context import AppContext
from precache.semantic.decision import SemanticMatch
from precache.semantic.embedders import embedder_for
from precache.semantic.index import SemanticIndex

log = logging.getLogger(__name__)


class SemanticTier:
    """Find a cached question whose answer serves an ask, or suggestions near a miss."""

    def __init__(self, settings):
        from threadpoolctl import threadpool_limits

        # One BLAS thread per search: the web runs many requests on few cores, and a multi-threaded
        # matrix-vector product over the cached questions was ten times slower on busy cores.
        threadpool_limits(limits=1, user_api="blas")
        self.settings = settings
        self.enabled = settings.semantic_enabled
        self.index = SemanticIndex.from_settings(settings)
        self._lock = threading.Lock()
        # Askers repeat questions word for word: their embedding is kept, and a repeat is matched
        # against the index as it is now (so always decided afresh) without encoding again.
        self._recent: OrderedDict[str, np.ndarray] = OrderedDict()

    def vector(self, question: str) -> np.ndarray | None:
        """Embed a question (or recall its embedding); on a broken embedder, switch the tier off once and say why."""
        if not self.enabled:
            return None
        with self._lock:
            if question in self._recent:
                self._recent.move_to_end(question)
                return self._recent[question]
        try:
            vector = embedder_for(self.settings).encode_one(question)
        except Exception as exc:  # the ladder goes on without this tier
            self._switch_off(exc)
            return None
        self._remember(question, vector)
        return vector

    def overflow(self, question: str) -> tuple[int, int] | None:
        """Return (tokens, window) of a question longer than the embedder reads; None when it fits or the tier is off."""
        if not self.enabled:
            return None
        embedder = embedder_for(self.settings)
        try:
            tokens, window = embedder.window_of(question)
        except Exception as exc:  # the ladder goes on without this tier
            self._switch_off(exc)
            return None
        return (tokens, window) if tokens > window else None

    def _switch_off(self, exc: Exception) -> None:
        with self._lock:
            if self.enabled:
                log.error("semantic tier off: cannot embed with %s: %s", self.settings.embedding_model, exc)
                self.enabled = False

    def _remember(self, question: str, vector: np.ndarray) -> None:
        with self._lock:
            self._recent[question] = vector
            if len(self._recent) > self.settings.semantic_recent_size:
                self._recent.popitem(last=False)

    def warm(self) -> None:
        """Load the embedders now (each language's), so the first ask of this process is not the one that waits."""
        self.vector("warm up")
        self.vector("준비 운동")

    def refreshed(self, ctx: AppContext) -> bool:
        """Bring the index up to date (or go on with what is loaded); tell whether there is anything to search."""
        try:
            self.index.refresh(ctx)
        except SQLAlchemyError as exc:  # match against what is loaded; the next ask refreshes again
            log.warning("semantic index not refreshed, database unavailable: %s", exc)
        return bool(len(self.index))

    def match(self, ctx: AppContext, question: str, vector: np.ndarray | None, qhash: str | None = None
              ) -> SemanticMatch | None:
        if vector is None or not self.refreshed(ctx):
            return None
        return self.index.match(question, vector, tenant=ctx.tenant, qhash=qhash)

    def offers(self, ctx: AppContext, vector: np.ndarray | None, n: int = 3) -> list[tuple[dict, SemanticMatch]]:
        """Return up to n answers near an ask, servable in the asker's namespace, nearest first, one per answer.

        Searches the index as loaded: the ladder refreshed it for this ask already (`match`).
        """
        if vector is None or not len(self.index):
            return []
        found, seen = [], set()
        for near in self.index.nearest_answers(vector, tenant=ctx.tenant):
            if len(found) == n:  # no look-up past the n-th
                break
            hit = ctx.store.lookup(near.qhash)
            if hit is None or hit[0]["answer_id"] in seen:
                continue
            seen.add(hit[0]["answer_id"])
            found.append((hit[0], near))
        return found

    def suggestions(self, ctx: AppContext, vector: np.ndarray | None, n: int = 3) -> list[dict]:
        """Return "did you mean" suggestions an asker can pick: {"question", "answer_id", "similarity"}."""
        return [{"question": payload["matched_question"], "answer_id": payload["answer_id"],
                 "similarity": round(near.similarity, 4)} for payload, near in self.offers(ctx, vector, n)]
