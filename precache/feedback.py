"""Feedback from askers: record it, learn a phrasing from it, retract one, and list or remove what was learned.

The one write path open to askers, so it is guarded (the web checks what the ladder offered before
calling `record`): a phrasing is only linked to an answer the ladder offered for it, every link names
who taught it and when, and a later "does not fit" for that phrasing and answer retracts it at once.
"""

import logging

import numpy as np
import redis
from sqlalchemy import select, update

from precache import keys
from precache.app_context import AppContext
from precache.db import session_scope
from precache.models import Answer, Feedback, LearnedPhrasing, Question, QuestionEmbedding, utcnow
from precache.semantic.store import answer_groups, regroup

log = logging.getLogger(__name__)


def record(ctx: AppContext, ask, vector: np.ndarray | None, answer: dict | None, helpful: bool,
           offered: dict[int, float], asker: str) -> dict:
    """Store one feedback; learn or retract the phrasing's link to the answer; return what was done."""
    with session_scope(ctx.sessions) as session:
        session.add(Feedback(tenant=ctx.tenant, question=ask.question, qhash=ask.qhash,
                             answer_id=answer["answer_id"] if answer else None, helpful=helpful,
                             offered={str(k): round(v, 4) for k, v in offered.items()}, asker=asker,
                             model=ctx.settings.embedding_model,
                             vector=b"" if vector is None else np.asarray(vector, "<f4").tobytes()))
    done = {"recorded": True, "learned": False, "retracted": 0}
    if answer is not None and ctx.settings.learn:
        if helpful:
            done["learned"] = _learn(ctx, ask, vector, answer, asker)
        else:
            done["retracted"] = _retract(ctx, ask.qhash, answer["question_id"], asker)
        if done["learned"] or done["retracted"]:
            ctx.store.recache(ask.qhash)  # the phrasing's hot-cache entry now answers as the links say
            regroup(ctx.redis)
    _bump(ctx.redis)
    return done


def _learn(ctx: AppContext, ask, vector, answer: dict, asker: str) -> bool:
    question_id = ctx.store.ensure_question(ask.question.strip(), ask.normalized, ask.qhash)
    if question_id == answer["question_id"]:
        return False  # the answer's own question: nothing to link
    with session_scope(ctx.sessions) as session:
        active = session.scalar(select(LearnedPhrasing.id).where(
            LearnedPhrasing.question_id == question_id, LearnedPhrasing.tenant == ctx.tenant,
            LearnedPhrasing.target_id == answer["question_id"], LearnedPhrasing.retracted_at.is_(None)))
        if active is not None:
            return False
        session.add(LearnedPhrasing(tenant=ctx.tenant, question_id=question_id, answer_id=answer["answer_id"],
                                    target_id=answer["question_id"], taught_by=asker))
        _embed_phrasing(session, ctx.settings.embedding_model, question_id, vector)
    log.info("learned phrasing %r for answer %s (taught by %s)", ask.question[:80], answer["answer_id"], asker)
    return True


def _embed_phrasing(session, model: str, question_id: int, vector) -> None:
    """The phrasing joins the semantic index as the answer's, unless it has an embedding already."""
    has_vector = session.scalar(select(QuestionEmbedding.id).where(
        QuestionEmbedding.question_id == question_id, QuestionEmbedding.model == model))
    if has_vector is None and vector is not None:
        session.add(QuestionEmbedding(question_id=question_id, model=model,
                                      dim=len(vector), vector=np.asarray(vector, "<f4").tobytes()))


def _retract(ctx: AppContext, qhash: str, target_id: int, asker: str) -> int:
    question_id = select(Question.id).where(Question.qhash == qhash).scalar_subquery()
    with session_scope(ctx.sessions) as session:
        result = session.execute(
            update(LearnedPhrasing)
            .where(LearnedPhrasing.question_id == question_id, LearnedPhrasing.target_id == target_id,
                   LearnedPhrasing.tenant == ctx.tenant, LearnedPhrasing.retracted_at.is_(None))
            .values(retracted_at=utcnow(), retracted_by=asker))
    return result.rowcount


def _bump(client: redis.Redis) -> None:
    try:
        client.incr(keys.semantic_version())  # a learned phrasing's vector may be new
        client.incr(keys.feedback_version())
    except redis.RedisError as exc:  # stored in SQL; web processes load it at the next bump
        log.warning("feedback version not bumped, Redis unavailable: %s", exc)


def load_evidence(sessions, evidence, model: str) -> int:
    """Feed the feedback stored since the evidence's last row into it; return how many rows."""
    query = (select(Feedback).where(Feedback.id > evidence.last_row, Feedback.model == model)
             .order_by(Feedback.id).limit(5000))
    with sessions() as session:
        rows = session.scalars(query).all()
    # Each answer shown is known by its key (that of its question's group), if it still exists.
    shown = {int(a) for row in rows for a in row.offered} | {row.answer_id for row in rows if row.answer_id}
    with sessions() as session:
        questions = dict(session.execute(select(Answer.id, Answer.question_id).where(Answer.id.in_(shown))).all())
    groups = answer_groups(sessions, list(set(questions.values())))
    key_of = {aid: groups[qid] for aid, qid in questions.items() if qid in groups}
    for row in rows:
        offered = {key_of[int(a)]: c for a, c in row.offered.items() if int(a) in key_of}
        picked = key_of.get(row.answer_id)
        vector = np.frombuffer(row.vector, dtype="<f4") if row.vector else None
        evidence.add(vector, row.tenant, row.qhash, offered, picked if row.helpful else None,
                     None if row.helpful else picked)
        evidence.last_row = row.id
    return len(rows)


def _view(link: LearnedPhrasing, phrasing: str) -> dict:
    return {"id": link.id, "tenant": link.tenant, "phrasing": phrasing, "answer_id": link.answer_id,
            "question_id": link.target_id, "taught_by": link.taught_by, "taught_at": link.taught_at.isoformat(),
            "retracted_at": link.retracted_at.isoformat() if link.retracted_at else None,
            "retracted_by": link.retracted_by}


def learned(ctx: AppContext, tenant: str | None = None, limit: int = 1000) -> list[dict]:
    """Return the learned phrasings (of one tenant when given), newest first, retracted ones included."""
    query = (select(LearnedPhrasing, Question.text).join(Question, Question.id == LearnedPhrasing.question_id)
             .order_by(LearnedPhrasing.id.desc()).limit(limit))
    if tenant is not None:
        query = query.where(LearnedPhrasing.tenant == tenant)
    with ctx.sessions() as session:
        return [_view(link, text) for link, text in session.execute(query)]


def unlearn(ctx: AppContext, link_id: int, by: str = "admin") -> dict | None:
    """Retract one learned phrasing (served no more, at once); None when there is none with that id."""
    with session_scope(ctx.sessions) as session:
        link = session.get(LearnedPhrasing, link_id)
        if link is None:
            return None
        if link.retracted_at is None:
            link.retracted_at, link.retracted_by = utcnow(), by
        question = session.get(Question, link.question_id)
        session.flush()
        view, tenant, qhash = _view(link, question.text), link.tenant, question.qhash
    ctx.for_tenant(tenant).store.recache(qhash)
    regroup(ctx.redis)
    return view
