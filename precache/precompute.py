"""Queue generation for every FAQ question that has no answer yet."""

from sqlalchemy import select

from precache.models import Answer, Question


def unanswered_faq(ctx) -> list[Question]:
    """Return FAQ questions with no answer servable in the context's namespace (tenant included)."""
    answered = select(Answer.question_id).where(ctx.store.servable())
    query = select(Question).where(Question.is_faq, Question.id.not_in(answered)).order_by(Question.id)
    with ctx.sessions() as session:
        return list(session.scalars(query))


def queue_unanswered(ctx) -> list[str]:
    """Enqueue each unanswered FAQ question once (joining jobs already running); return job ids."""
    job_ids = []
    for question in unanswered_faq(ctx):
        job_id, _ = ctx.jobs.enqueue(ctx.ns, question.qhash, lambda q=question: q.id, background=True)
        job_ids.append(job_id)
    return job_ids
