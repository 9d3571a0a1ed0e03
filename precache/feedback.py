"""Feedback from askers: record it, learn a phrasing from it, retract one, and list or remove what was learned.

The one write path open to askers, so it is guarded (the web checks what the ladder offered before
calling `record`): a phrasing is only linked to an answer the ladder offered for it; a phrasing whose own
question has a curated or pinned answer is never linked to another; a link serves others only once
PRECACHE_LEARN_CONFIRMATIONS distinct askers taught it (one row each, naming who and when; phrasings that
mean the same agree: PRECACHE_LEARN_AGREEMENT) or an admin confirmed it; and a later "does not fit" for
that phrasing and answer retracts it at once (retracting only ever gives back the answer the phrasing had
before).
"""

import logging

import numpy as np
import redis
from sqlalchemy import select, update

from precache import keys
from precache.app_context import AppContext
from precache.db import session_scope
from precache.models import Answer, Feedback, LearnedPhrasing, Question, QuestionEmbedding, utcnow
from precache.semantic import calibration
from precache.semantic.embedders import embedding_key
from precache.semantic.store import CURATED, answer_groups, regroup

log = logging.getLogger(__name__)


def record(ctx: AppContext, ask, vector: np.ndarray | None, answer: dict | None, helpful: bool,
           offered: dict[int, float], asker: str) -> dict:
    """Store one feedback; learn or retract the phrasing's link to the answer; return what was done."""
    with session_scope(ctx.sessions) as session:
        session.add(Feedback(tenant=ctx.tenant, question=ask.question, qhash=ask.qhash,
                             answer_id=answer["answer_id"] if answer else None, helpful=helpful,
                             offered={str(k): round(v, 4) for k, v in offered.items()}, asker=asker,
                             model=embedding_key(ctx.settings),
                             vector=b"" if vector is None else np.asarray(vector, "<f4").tobytes()))
    done = {"recorded": True, "learned": False, "proposed": False, "retracted": 0}
    if answer is not None and ctx.settings.learn:
        agreed = []
        if helpful:
            state, agreed = _learn(ctx, ask, vector, answer, asker)
            done["learned"], done["proposed"] = state == "confirmed", state == "proposed"
        else:
            done["retracted"] = _retract(ctx, ask.qhash, answer["question_id"], asker)
        if done["learned"] or done["retracted"]:
            for qhash in (ask.qhash, *agreed):  # each phrasing's hot-cache entry now answers as the links say
                ctx.store.recache(qhash)
            regroup(ctx.redis)
    _bump(ctx.redis)
    return done


def _learn(ctx: AppContext, ask, vector, answer: dict, asker: str) -> tuple[str | None, list[str]]:
    """Record this asker's link of the phrasing to the answer; confirm the link once enough distinct askers
    taught it, or taught the same answer for a phrasing that means the same (PRECACHE_LEARN_AGREEMENT).

    Returns ("confirmed", the hashes of the other phrasings confirmed with it) when this feedback made the
    link serve others, ("proposed", []) when it waits for more askers, (None, []) when nothing was linked."""
    question_id = ctx.store.ensure_question(ask.question.strip(), ask.normalized, ask.qhash)
    if question_id == answer["question_id"] or ctx.store.vouched(question_id):
        return None, []  # the answer's own question, or one with a curated or pinned answer: never re-pointed
    target = answer["question_id"]
    link = (LearnedPhrasing.question_id == question_id, LearnedPhrasing.tenant == ctx.tenant,
            LearnedPhrasing.target_id == target, LearnedPhrasing.retracted_at.is_(None))
    with session_scope(ctx.sessions) as session:
        taught = dict(session.execute(select(LearnedPhrasing.taught_by, LearnedPhrasing.confirmed_at)
                                      .where(*link)).all())
        if asker in taught:
            return None, []  # the same asker again counts once
        confirmed = any(taught.values())
        session.add(LearnedPhrasing(tenant=ctx.tenant, question_id=question_id, answer_id=answer["answer_id"],
                                    target_id=target, taught_by=asker, confirmed_at=utcnow() if confirmed else None))
        if confirmed:
            return None, []
        agreeing = _agreeing(ctx, session, ask.question, vector, target, asker, question_id)
        if len({*taught, asker, *(who for _, _, who in agreeing)}) < ctx.settings.learn_confirmations:
            log.info("proposed phrasing %r for answer %s (taught by %s)", ask.question[:80], answer["answer_id"], asker)
            return "proposed", []
        session.flush()
        phrasings = {qid: vec for qid, vec, _ in agreeing} | {question_id: vector}
        session.execute(update(LearnedPhrasing).where(
            LearnedPhrasing.question_id.in_(phrasings), LearnedPhrasing.tenant == ctx.tenant,
            LearnedPhrasing.target_id == target, LearnedPhrasing.retracted_at.is_(None),
            LearnedPhrasing.confirmed_at.is_(None)).values(confirmed_at=utcnow()))
        # Only a confirmed phrasing joins the semantic index: a proposed one, grouped with no answer,
        # would stand as a rival of every answer near it.
        for phrasing_id, phrasing_vector in phrasings.items():
            _embed_phrasing(session, embedding_key(ctx.settings), phrasing_id, phrasing_vector)
        others = list(session.scalars(select(Question.qhash).where(
            Question.id.in_([qid for qid in phrasings if qid != question_id]))))
    log.info("learned phrasing %r for answer %s (taught by %s; %d phrasings meaning the same confirmed with it)",
             ask.question[:80], answer["answer_id"], asker, len(others))
    return "confirmed", others


def _agreeing(ctx: AppContext, session, question: str, vector, target: int, asker: str,
              question_id: int) -> list[tuple[int, np.ndarray, str]]:
    """The proposed links of other askers to the same answer whose phrasing means the same as this one (cosine at
    least PRECACHE_LEARN_AGREEMENT, no guard vetoing the pair): [(their question id, its vector, who taught it)].
    The newest 500 proposals are read."""
    from precache.semantic.guards import compatible

    agreement = calibration.for_text(ctx.settings, question).agreement
    if vector is None or agreement > 1:
        return []
    rows = session.execute(
        select(LearnedPhrasing.question_id, LearnedPhrasing.taught_by, Question.text, Feedback.vector)
        .join(Question, Question.id == LearnedPhrasing.question_id)
        .join(Feedback, (Feedback.qhash == Question.qhash) & (Feedback.asker == LearnedPhrasing.taught_by)
              & (Feedback.tenant == LearnedPhrasing.tenant) & Feedback.helpful
              & (Feedback.model == embedding_key(ctx.settings)))
        .where(LearnedPhrasing.tenant == ctx.tenant, LearnedPhrasing.target_id == target,
               LearnedPhrasing.retracted_at.is_(None), LearnedPhrasing.confirmed_at.is_(None),
               LearnedPhrasing.taught_by != asker, LearnedPhrasing.question_id != question_id)
        .order_by(LearnedPhrasing.id.desc()).limit(500)).all()
    mine = np.asarray(vector, dtype=np.float32)
    mine = mine / max(float(np.linalg.norm(mine)), 1e-9)
    agreeing = []
    for other_id, taught_by, text, raw in rows:
        theirs = np.frombuffer(raw, dtype="<f4") if raw else None
        if theirs is None or len(theirs) != len(mine):
            continue
        similarity = float(mine @ theirs) / max(float(np.linalg.norm(theirs)), 1e-9)
        if similarity >= agreement and compatible(question, text) is None:
            agreeing.append((other_id, theirs, taught_by))
    return agreeing


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
    """Feed the feedback stored since the evidence's last row into it; return how many rows.

    Feedback on curated and pinned answers only tunes their thresholds, which never rise above the
    global rule: no asker's rejection takes away what others are served of those (it stays in the
    feedback table for an admin to read).
    """
    query = (select(Feedback).where(Feedback.id > evidence.last_row, Feedback.model == model)
             .order_by(Feedback.id).limit(5000))
    with sessions() as session:
        rows = session.scalars(query).all()
    # Each answer shown is known by its key (that of its question's group), if it still exists.
    shown = {int(a) for row in rows for a in row.offered} | {row.answer_id for row in rows if row.answer_id}
    with sessions() as session:
        answers = session.execute(select(Answer.id, Answer.question_id, Answer.curated | Answer.pinned)
                                  .where(Answer.id.in_(shown))).all()
    groups = answer_groups(sessions, list({question_id for _, question_id, _ in answers}))
    key_of = {aid: groups[qid] for aid, qid, _ in answers if qid in groups}
    protected = {groups[qid] for _, qid, vouched in answers if qid in groups and vouched}
    protected |= {key for key in key_of.values() if key.startswith(CURATED)}
    for row in rows:
        offered = {key_of[int(a)]: c for a, c in row.offered.items() if int(a) in key_of}
        picked = key_of.get(row.answer_id)
        vector = np.frombuffer(row.vector, dtype="<f4") if row.vector else None
        evidence.add(vector, row.tenant, row.qhash, offered, picked if row.helpful else None,
                     None if row.helpful else picked, row.asker, protected)
        evidence.last_row = row.id
    return len(rows)


def _view(link: LearnedPhrasing, phrasing: str) -> dict:
    return {"id": link.id, "tenant": link.tenant, "phrasing": phrasing, "answer_id": link.answer_id,
            "question_id": link.target_id, "taught_by": link.taught_by, "taught_at": link.taught_at.isoformat(),
            "confirmed_at": link.confirmed_at.isoformat() if link.confirmed_at else None,
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


def negatives(ctx: AppContext, tenant: str | None = None, answer_id: int | None = None,
              limit: int = 1000) -> list[dict]:
    """Return the negatives askers gave (feedback "does not fit" or "none fits"), newest first: of one tenant and
    one answer when given."""
    query = select(Feedback).where(~Feedback.helpful).order_by(Feedback.id.desc()).limit(limit)
    if tenant is not None:
        query = query.where(Feedback.tenant == tenant)
    if answer_id is not None:
        query = query.where(Feedback.answer_id == answer_id)
    with ctx.sessions() as session:
        return [_negative_view(row) for row in session.scalars(query)]


def _negative_view(row: Feedback) -> dict:
    return {"id": row.id, "tenant": row.tenant, "phrasing": row.question, "answer_id": row.answer_id,
            "shown": row.offered, "asker": row.asker, "created_at": row.created_at.isoformat()}


def withdraw(ctx: AppContext, feedback_id: int) -> dict | None:
    """Undo one negative: delete its row; every web process rebuilds its evidence from the rows left (its veto,
    its rival point and its observation go). None when there is no such negative."""
    with session_scope(ctx.sessions) as session:
        row = session.get(Feedback, feedback_id)
        if row is None or row.helpful:
            return None
        view = _negative_view(row) | {"withdrawn": True}
        session.delete(row)
    forget_deleted_feedback(ctx.redis)
    return view


def forget_deleted_feedback(client: redis.Redis) -> None:
    """Tell web processes that feedback rows were deleted: they load their evidence again from the start."""
    try:
        client.incr(keys.feedback_epoch())
    except redis.RedisError as exc:  # the rows are gone from SQL; processes forget them at their next start
        log.warning("feedback epoch not moved, Redis unavailable: %s", exc)


def unlearn(ctx: AppContext, link_id: int, by: str = "admin") -> dict | None:
    """Retract a learned phrasing, every asker's row of it (served no more, at once); None when there is none."""
    return _settle_link(ctx, link_id, {"retracted_at": utcnow(), "retracted_by": by})


def confirm(ctx: AppContext, link_id: int) -> dict | None:
    """Confirm a learned phrasing that waits for more askers: it serves others at once; None when there is none."""
    view = _settle_link(ctx, link_id, {"confirmed_at": utcnow()}, only=LearnedPhrasing.confirmed_at.is_(None))
    if view is not None:  # it joins the semantic index with the embedding its askers' feedback recorded
        with session_scope(ctx.sessions) as session:
            question = session.get(Question, session.get(LearnedPhrasing, link_id).question_id)
            recorded = session.scalar(select(Feedback.vector).where(
                Feedback.qhash == question.qhash, Feedback.tenant == view["tenant"],
                Feedback.model == embedding_key(ctx.settings), Feedback.vector != b"").order_by(Feedback.id.desc()))
            if recorded:
                _embed_phrasing(session, embedding_key(ctx.settings), question.id, np.frombuffer(recorded, "<f4"))
        _bump(ctx.redis)
    return view


def _settle_link(ctx: AppContext, link_id: int, values: dict, only=None) -> dict | None:
    """Set `values` on the active rows of the link that row `link_id` is one of; refresh what its phrasing is served."""
    with session_scope(ctx.sessions) as session:
        row = session.get(LearnedPhrasing, link_id)
        if row is None:
            return None
        rows = [LearnedPhrasing.question_id == row.question_id, LearnedPhrasing.tenant == row.tenant,
                LearnedPhrasing.target_id == row.target_id, LearnedPhrasing.retracted_at.is_(None)]
        session.execute(update(LearnedPhrasing).where(*rows, *([only] if only is not None else []))
                        .values(**values))
        session.refresh(row)
        question = session.get(Question, row.question_id)
        view, tenant, qhash = _view(row, question.text), row.tenant, question.qhash
    ctx.for_tenant(tenant).store.recache(qhash)
    regroup(ctx.redis)
    return view
