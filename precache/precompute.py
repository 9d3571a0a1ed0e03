"""Queue generation for every FAQ question that has no answer yet."""

from sqlalchemy import select

from precache.app_context import AppContext
from precache.models import Answer, FaqQuestion, PredictedQuestion, Question
from precache.store import AnswerStore


def unanswered_faq(sessions, store: AnswerStore) -> list[Question]:
    """Return the tenant's FAQ and predicted questions with no answer servable in the store's namespace."""
    answered = select(Answer.question_id).where(store.servable())
    faq = select(FaqQuestion.question_id).where(FaqQuestion.tenant == store.tenant)
    predicted = select(PredictedQuestion.question_id).where(PredictedQuestion.tenant == store.tenant,
                                                             PredictedQuestion.canonical_id.is_(None))
    query = (select(Question).where(Question.id.in_(faq) | Question.id.in_(predicted), Question.id.not_in(answered))
             .order_by(Question.id))
    with sessions() as session:
        return list(session.scalars(query))


def queue_unanswered(ctx: AppContext) -> list[str]:
    """Enqueue each unanswered FAQ question once (joining jobs already running); return job ids."""
    job_ids = []
    for question in unanswered_faq(ctx.sessions, ctx.store):
        job_id, _ = ctx.jobs.enqueue(ctx.ns, question.qhash, lambda q=question: q.id, background=True)
        job_ids.append(job_id)
    return job_ids
