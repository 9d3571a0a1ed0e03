"""The web's side of the semantic tier: one index and one embedder per process, used by the ladder."""

import logging
import threading

import numpy as np
from sqlalchemy.exc import SQLAlchemyError

from precache.embedder import shared_embedder
from precache.semantic import SemanticIndex, SemanticMatch

log = logging.getLogger(__name__)


class SemanticTier:
    """Find a cached question whose answer serves an ask, or suggestions near a miss."""

    def __init__(self, settings):
        self.settings = settings
        self.enabled = settings.semantic_enabled
        self.index = SemanticIndex.from_settings(settings)
        self._lock = threading.Lock()

    def vector(self, question: str) -> np.ndarray | None:
        """Embed a question; on a broken embedder, switch the tier off once and say why."""
        if not self.enabled:
            return None
        try:
            return shared_embedder(self.settings.embedding_model).encode_one(question)
        except Exception as exc:  # the ladder goes on without this tier
            with self._lock:
                if self.enabled:
                    log.error("semantic tier off: cannot embed with %s: %s", self.settings.embedding_model, exc)
                    self.enabled = False
            return None

    def warm(self) -> None:
        """Load the embedder now, so the first ask of this process is not the one that waits for it."""
        self.vector("warm up")

    def match(self, ctx, question: str, vector: np.ndarray | None) -> SemanticMatch | None:
        if vector is None:
            return None
        try:
            self.index.refresh(ctx)
        except SQLAlchemyError as exc:  # match against what is loaded; the next ask refreshes again
            log.warning("semantic index not refreshed, database unavailable: %s", exc)
        return self.index.match(question, vector) if len(self.index) else None

    def suggestions(self, vector: np.ndarray | None, n: int = 3) -> list[str]:
        if vector is None or not len(self.index):
            return []
        return [m.matched_question for m in self.index.near_misses(vector, n)]
