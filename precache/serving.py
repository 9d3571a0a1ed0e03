"""Which stored answer serves a question: the question whose answers answer it, in which order."""

from sqlalchemy import case, func, select

from precache.models import Answer, LearnedPhrasing, Question, utcnow


def answering_question(qhash: str, tenant: str):
    """The id of the question whose answers answer this one for this tenant, as a subquery.

    A phrasing an asker of this tenant linked to an answer (and nobody retracted) is answered by it
    first; a paraphrase linked to a canonical question is answered by the canonical question's answers.
    """
    learned = (select(LearnedPhrasing.target_id).where(LearnedPhrasing.question_id == Question.id,
                                                       LearnedPhrasing.tenant == tenant,
                                                       LearnedPhrasing.retracted_at.is_(None))
               .order_by(LearnedPhrasing.id.desc()).limit(1).scalar_subquery())
    return (select(func.coalesce(learned, Question.canonical_id, Question.id)).where(Question.qhash == qhash)
            .scalar_subquery())


def serving_order() -> tuple:
    """Pinned, then curated, then fresh before expired, then the higher quality (a detailed answer replaces
    the quick one when its quality is at least as high), then the newest."""
    return (
        Answer.pinned.desc(),
        Answer.curated.desc(),
        case((Answer.expires_at > utcnow(), 0), else_=1),
        case((Answer.quality.is_(None), 1), else_=0),
        Answer.quality.desc(),
        case((Answer.level == "detailed", 0), else_=1),
        Answer.created_at.desc(),
    )
