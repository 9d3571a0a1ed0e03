"""What a change of a tenant's documents does to its cached answers.

An answer that used a document which changed or went is outdated at once (`review = 'outdated'`: never
served again, on any rung: the exact, semantic and fast paths all read servable answers only), its
hot-cache entries are dropped, and its question is queued again: the new answer is written from the
new passages. Answers the documents did not cover (not in the documents, or the model alone) are
outdated too (unless PRECACHE_GROUNDING is off): the new documents may cover them; they are generated again
when next asked.
"""

import logging
from collections.abc import Iterable

import redis
from sqlalchemy import false, or_, select, update

from precache import keys
from precache.app_context import AppContext
from precache.db import session_scope
from precache.models import Answer, AnswerDocument, Question
from precache.normalize import namespace_id

log = logging.getLogger(__name__)
# Answers written without the documents, outdated by any change of them.
UNCOVERED = ("not_in_documents", "ungrounded")


def outdate(ctx: AppContext, document_ids: Iterable[int]) -> dict:
    """Outdate the tenant's answers that used these documents, and those the documents did not cover; queue
    the questions of the first again. Returns {"outdated": answers, "queued": questions}."""
    document_ids = list(document_ids)
    used = Answer.id.in_(select(AnswerDocument.answer_id).where(AnswerDocument.document_id.in_(document_ids)))
    uncovered = (Answer.tenant == ctx.tenant) & ~Answer.curated & (
        Answer.grounding.in_(UNCOVERED) | Answer.grounding.is_(None))
    if ctx.settings.grounding == "off":  # the documents answer nothing: what the model alone wrote stays
        uncovered = false()
    settled = Answer.review.is_(None) | (Answer.review == "approved")
    with session_scope(ctx.sessions) as session:
        rows = session.execute(
            select(Answer.id, Answer.namespace, Answer.grounding, Question.id, Question.qhash).join(Question)
            .where(settled, or_(used, uncovered))).all()
        if rows:
            session.execute(update(Answer).where(Answer.id.in_([row[0] for row in rows]))
                            .values(review="outdated", pinned=False))
    touched = {(namespace, qhash) for _, namespace, _, _, qhash in rows}
    for namespace, qhash in touched:
        _drop(ctx, namespace, qhash)
    grounded = {(qid, qhash) for _, namespace, grounding, qid, qhash in rows
                if grounding == "grounded" and namespace == ctx.store.namespace}
    queued = 0
    for question_id, qhash in grounded:
        try:
            ctx.jobs.enqueue(ctx.ns, qhash, lambda qid=question_id: qid, kind="refresh", background=True)
            queued += 1
        except Exception as exc:  # the answer is outdated already; its next asker queues it
            log.warning("cannot queue question %s again after its documents changed: %s", question_id, exc)
    if rows:
        log.info("documents changed: %d answers outdated, %d questions queued again", len(rows), queued)
    return {"outdated": len(rows), "queued": queued}


def _drop(ctx: AppContext, namespace: str, qhash: str) -> None:
    """Drop the hot-cache entries of a question whose answer was outdated (and of its linked paraphrases)."""
    tenant = ctx.settings.tenant_of(namespace)
    if tenant is not None:  # this model's namespace: the store puts the next best answer in
        ctx.store.for_tenant(tenant).recache(qhash)
        return
    try:  # another model's or prompt's: not served now; its entry goes, or expires with the hot cache's TTL
        ctx.redis.delete(keys.answer(namespace_id(namespace), qhash))
    except redis.RedisError as exc:
        log.warning("cannot drop the hot-cache entry of %s in %s: %s", qhash, namespace, exc)
