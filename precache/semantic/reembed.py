"""Re-embedding after the embedder changed: vectors of two embedders never mix.

Vectors are stored under the name of the embedder that made them (embedding_key: each language's
model, and a packaged engine's version). When the configured embedder changes (a new model, another
Korean model, an engine upgrade), the index loads only rows of the new name, so it starts empty:
every question that was indexed under another name is embedded again under the new one, and every
recorded feedback vector (the evidence that decides per answer, the phrasings askers taught) is
re-embedded in place from its question's text. The worker runs this as a scheduled job
(`reembed-questions`, every REEMBED_INTERVAL_S), a bounded slice per run with its progress in the log;
`precache reembed` runs it to the end with a progress bar. Question vectors of the old name are kept
(switching back finds them); feedback vectors are rewritten, and every web process reads its evidence
again.
"""

import logging
import time

import numpy as np
from sqlalchemy import select

from precache.app_context import AppContext
from precache.db import session_scope
from precache.models import Feedback, QuestionEmbedding
from precache.semantic.embedders import embedding_key
from precache.semantic.store import index_questions

log = logging.getLogger(__name__)
BATCH = 256


def pending(ctx: AppContext) -> tuple[list[int], int]:
    """Return (question ids indexed under another embedder and not this one, feedback rows of another embedder)."""
    key = embedding_key(ctx.settings)
    with ctx.sessions() as session:
        have = select(QuestionEmbedding.question_id).where(QuestionEmbedding.model == key)
        questions = session.scalars(
            select(QuestionEmbedding.question_id).where(QuestionEmbedding.model != key,
                                                        QuestionEmbedding.question_id.not_in(have))
            .distinct().order_by(QuestionEmbedding.question_id)).all()
        feedback = session.query(Feedback).filter(Feedback.model != key, Feedback.vector != b"").count()
    return list(questions), feedback


def reembed(ctx: AppContext, embedder, budget_s: float | None = None, progress=lambda n: None) -> dict:
    """Embed under the configured embedder what was embedded under another; stop after `budget_s` (None: all).

    Returns {"embedder", "questions", "feedback", "left"}: rows done in this run, and questions still to do.
    """
    key, started = embedding_key(ctx.settings), time.monotonic()
    todo, _ = pending(ctx)
    done = 0
    for start in range(0, len(todo), BATCH):
        if budget_s is not None and time.monotonic() - started > budget_s:
            break
        chunk = todo[start:start + BATCH]
        index_questions(ctx, embedder, chunk)
        done += len(chunk)
        progress(len(chunk))
    feedback = _reembed_feedback(ctx, embedder, key, started, budget_s)
    if feedback:
        from precache.feedback import forget_deleted_feedback

        forget_deleted_feedback(ctx.redis)  # rewritten rows: each web process reads its evidence again
    left = len(todo) - done
    if done or feedback or left:
        log.info("re-embedding under %s: %d questions and %d feedback vectors done, %d questions left",
                 key, done, feedback, left)
    return {"embedder": key, "questions": done, "feedback": feedback, "left": left}


def _reembed_feedback(ctx: AppContext, embedder, key: str, started: float, budget_s: float | None) -> int:
    """Re-embed recorded feedback vectors of another embedder in place, from their question's text."""
    done = 0
    while budget_s is None or time.monotonic() - started <= budget_s:
        with session_scope(ctx.sessions) as session:
            rows = session.scalars(select(Feedback).where(Feedback.model != key, Feedback.vector != b"")
                                   .order_by(Feedback.id).limit(BATCH)).all()
            if not rows:
                break
            vectors = embedder.encode([row.question for row in rows])
            for row, vector in zip(rows, vectors):
                row.vector, row.model = np.asarray(vector, dtype="<f4").tobytes(), key
            done += len(rows)
    return done
