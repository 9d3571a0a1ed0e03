"""Question embeddings in SQL: store them once per question and model, load the ones added since a row.

The worker and `faq import` call index_question(s) after storing an answer; each call bumps the Redis
version counter, which tells every web process to load the new rows (SemanticIndex.refresh).
"""

import hashlib
import logging

import numpy as np
import redis
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from precache import keys
from precache.app_context import AppContext
from precache.db import session_scope
from precache.models import Answer, LearnedPhrasing, PredictedQuestion, Question, QuestionEmbedding
from precache.semantic.embedders import embedding_key

log = logging.getLogger(__name__)
CURATED = "faq:"  # the prefix of a curated answer's key; other keys are question hashes


def answer_key(text: str) -> str:
    """Return the key that groups cached questions sharing one curated answer text."""
    return CURATED + hashlib.sha256(" ".join(text.split()).casefold().encode()).hexdigest()[:16]


def load_embeddings(sessions, model: str, after: int):
    """Return (ids, qhashes, texts, vectors, answer keys, last row id) of embeddings stored after a row id."""
    query = (
        select(QuestionEmbedding.id, QuestionEmbedding.question_id, QuestionEmbedding.vector, Question.qhash,
               Question.text)
        .join(Question, Question.id == QuestionEmbedding.question_id)
        .where(QuestionEmbedding.id > after, QuestionEmbedding.model == model)
        .order_by(QuestionEmbedding.id)
    )
    with sessions() as session:
        rows = session.execute(query).all()
    if not rows:
        return None
    groups = answer_groups(sessions, [r.question_id for r in rows])
    vectors = np.stack([np.frombuffer(r.vector, dtype="<f4") for r in rows])
    return ([r.question_id for r in rows], [r.qhash for r in rows], [r.text for r in rows], vectors,
            [groups[r.question_id] for r in rows], rows[-1].id)


def answer_groups(sessions, question_ids: list[int]) -> dict[int, str]:
    """Return each question's answer key: questions that share an answer share a key.

    The key of a question is that of the answer an asker linked it to (a learned phrasing, in any
    tenant: the phrasing counts as one of that answer's), else of its canonical question when
    predictive precompute linked it to one (in any tenant); then the text of its curated answer if it has one, else
    its own hash.
    """
    groups: dict[int, str] = {}
    with sessions() as session:
        for start in range(0, len(question_ids), 500):
            target = _answer_targets(session, question_ids[start:start + 500])
            curated = _curated_answers(session, list(set(target.values())))
            hashes = dict(session.execute(select(Question.id, Question.qhash)
                                          .where(Question.id.in_(set(target.values())))).all())
            groups.update({qid: answer_key(curated[t]) if t in curated else hashes[t] for qid, t in target.items()})
    return groups


def _answer_targets(session, question_ids: list[int]) -> dict[int, int]:
    """Each question's target: the question whose answers it shares (learned, else canonical, else itself)."""
    rows = session.execute(select(Question.id, Question.canonical_id).where(Question.id.in_(question_ids))).all()
    target = {qid: canonical or qid for qid, canonical in rows}
    target.update(session.execute(  # in any tenant, as learned phrasings: the index is every tenant's
        select(PredictedQuestion.question_id, PredictedQuestion.canonical_id)
        .where(PredictedQuestion.question_id.in_(question_ids), PredictedQuestion.canonical_id.is_not(None))
        .order_by(PredictedQuestion.id)).all())
    target.update(session.execute(
        select(LearnedPhrasing.question_id, LearnedPhrasing.target_id)
        .where(LearnedPhrasing.question_id.in_(question_ids), LearnedPhrasing.confirmed_at.is_not(None),
               LearnedPhrasing.retracted_at.is_(None))
        .order_by(LearnedPhrasing.id)).all())
    return target


def _curated_answers(session, question_ids: list[int]) -> dict[int, str]:
    # Curated answers are the ones shared verbatim between questions (an FAQ entry's phrasings).
    found = {}
    for start in range(0, len(question_ids), 500):
        chunk = question_ids[start:start + 500]
        query = select(Answer.question_id, Answer.text).where(Answer.curated, Answer.question_id.in_(chunk))
        found.update((qid, text) for qid, text in session.execute(query.order_by(Answer.created_at)))
    return found


def index_question(ctx: AppContext, embedder, question_id: int) -> bool:
    """Store the embedding of a question if missing, then bump the version; return whether one was stored."""
    return index_questions(ctx, embedder, [question_id]) == 1


def index_questions(ctx: AppContext, embedder, question_ids, batch_size: int = 256, progress=lambda n: None) -> int:
    """Store the embeddings missing among these questions, then bump the version; return how many."""
    model, stored = embedding_key(ctx.settings), 0
    question_ids = list(dict.fromkeys(question_ids))
    for start in range(0, len(question_ids), batch_size):
        chunk = question_ids[start:start + batch_size]
        todo = _unembedded(ctx.sessions, model, chunk)
        if todo:
            stored += _embed(ctx.sessions, embedder, model, todo)
        progress(len(chunk))
    try:
        ctx.redis.incr(keys.semantic_version())
    except redis.RedisError as exc:  # the rows are in SQL; web processes pick them up at the next bump
        log.warning("semantic version not bumped, Redis unavailable: %s", exc)
    return stored


def _unembedded(sessions, model: str, question_ids: list[int]) -> list:
    """The (id, text) of those questions without an embedding of this model."""
    with sessions() as session:
        have = set(session.scalars(select(QuestionEmbedding.question_id).where(
            QuestionEmbedding.model == model, QuestionEmbedding.question_id.in_(question_ids))))
        return session.execute(select(Question.id, Question.text).where(
            Question.id.in_([q for q in question_ids if q not in have]))).all()


def _embed(sessions, embedder, model: str, todo: list) -> int:
    """Embed and store these questions; return how many were stored here."""
    vectors = embedder.encode([text for _, text in todo])
    rows = [QuestionEmbedding(question_id=qid, model=model, dim=vectors.shape[1],
                              vector=vec.astype("<f4").tobytes()) for (qid, _), vec in zip(todo, vectors)]
    try:
        with session_scope(sessions) as session:
            session.add_all(rows)
        return len(rows)
    except IntegrityError:  # another process stored some of them first: store one by one
        return _store_each(sessions, rows)


def _store_each(sessions, rows) -> int:
    stored = 0
    for row in rows:
        try:
            with session_scope(sessions) as session:
                session.add(QuestionEmbedding(question_id=row.question_id, model=row.model, dim=row.dim,
                                              vector=row.vector))
            stored += 1
        except IntegrityError:
            pass
    return stored


def regroup(client: redis.Redis) -> None:
    """Make every web process rebuild its index (answers were linked, replaced or rejected)."""
    try:
        client.incr(keys.semantic_epoch())
    except redis.RedisError as exc:
        log.warning("semantic epoch not bumped, Redis unavailable: %s", exc)
