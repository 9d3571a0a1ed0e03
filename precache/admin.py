"""Operator actions on stored answers: review (low-quality answers, and curated ones askers reported), approve,
reject (invalidate), pin, replace.

The admin API (web/admin.py) and `precache admin ...` both call these, in one tenant's namespace.
"""

from sqlalchemy import func, select

from precache.app_context import AppContext
from precache.db import session_scope
from precache.models import Answer, Feedback, Question


class NotFound(LookupError):
    """No answer with that id is visible in this namespace."""


def answer_view(answer: Answer, question: Question) -> dict:
    return {
        "answer_id": answer.id,
        "question_id": question.id,
        "question": question.text,
        "answer": answer.text,
        "level": answer.level,
        "quality": answer.quality,
        "components": answer.quality_components or {},
        "curated": answer.curated,
        "pinned": answer.pinned,
        "review": answer.review,
        "created_at": answer.created_at.isoformat() if answer.created_at else None,
    }


def awaiting_review(ctx: AppContext, limit: int = 100) -> list[dict]:
    """Return what awaits an admin, neither approved nor rejected yet: curated and pinned answers that askers said
    do not fit (`reason` "reported", most distinct askers first: no asker's word takes them from others, an
    admin decides), then generated answers below the quality threshold (`reason` "low_quality", worst first)."""
    reports = (select(Feedback.answer_id, func.count(func.distinct(Feedback.asker)).label("askers"))
               .where(Feedback.tenant == ctx.tenant, ~Feedback.helpful, Feedback.answer_id.is_not(None))
               .group_by(Feedback.answer_id).subquery())
    reported = (
        select(Answer, Question, reports.c.askers).join(Question).join(reports, reports.c.answer_id == Answer.id)
        .where(ctx.store.visible(), Answer.curated | Answer.pinned, Answer.review.is_(None))
        .order_by(reports.c.askers.desc(), Answer.id).limit(limit)
    )
    low = (
        select(Answer, Question).join(Question)
        .where(Answer.namespace == ctx.store.namespace, ~Answer.curated, Answer.review.is_(None),
               Answer.quality < ctx.settings.quality_threshold)
        .order_by(Answer.quality, Answer.id).limit(limit)
    )
    with ctx.sessions() as session:
        rows = [answer_view(a, q) | {"reason": "reported", "reports": n} for a, q, n in session.execute(reported)]
        for row in rows:
            row["phrasings"] = list(session.scalars(
                select(Feedback.question).where(Feedback.tenant == ctx.tenant, ~Feedback.helpful,
                                                Feedback.answer_id == row["answer_id"])
                .order_by(Feedback.id.desc()).limit(5)))
        rows += [answer_view(a, q) | {"reason": "low_quality"} for a, q in session.execute(low)]
    return rows[:limit]


def _update(ctx: AppContext, answer_id: int, **fields) -> dict:
    with session_scope(ctx.sessions) as session:
        answer = session.scalar(select(Answer).where(Answer.id == answer_id, ctx.store.visible()))
        if answer is None:
            raise NotFound(f"no answer {answer_id} in this namespace")
        for name, value in fields.items():
            setattr(answer, name, value)
        session.flush()
        view, qhash = answer_view(answer, answer.question), answer.question.qhash
    ctx.store.recache(qhash)
    return view


def approve(ctx: AppContext, answer_id: int) -> dict:
    """Serve this answer whatever its quality score."""
    return _update(ctx, answer_id, review="approved")


def reject(ctx: AppContext, answer_id: int) -> dict:
    """Never serve this answer again (invalidate); the next asker gets the next best answer or a new one."""
    return _update(ctx, answer_id, review="rejected", pinned=False)


def pin(ctx: AppContext, answer_id: int, pinned: bool = True) -> dict:
    """Serve this answer before any other of its question (or stop doing so)."""
    return _update(ctx, answer_id, pinned=pinned)


def replace(ctx: AppContext, answer_id: int, text: str) -> dict:
    """Reject an answer and store `text` as the curated answer of its question (in this tenant)."""
    rejected = reject(ctx, answer_id)
    saved = ctx.store.save_answer(rejected["question_id"], text, level=rejected["level"], curated=True,
                                  quality=1.0, quality_components={"curated": True, "replaces": answer_id})
    return {**rejected, "replaced_by": saved["answer_id"]}
