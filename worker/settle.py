"""How each job of a batch is settled from its outcome (worker/work.py): a generated answer is stored and scored,
gated, its question indexed and its job finished; a failed generation is sent again (a transient error, a batch
too slow for its time) or failed; preempted background work is sent back to its queue; a job that needed no
model is finished as its plan said.
"""

import logging

import redis
from sqlalchemy.exc import OperationalError

from precache import keys, logs
from precache.context import AppContext
from precache.documents.retrieval import passages_current
from precache.documents.grounding import extractive_answer
from precache.localized import not_in_documents_answer
from precache.semantic.embedders import embedder_for
from precache.semantic.store import index_question
from worker.backends import Backend, BackendError, BackendUnavailable, Generation
from worker.quality import Scorer, finished, llm_judge
from worker.work import (AlreadyDone, Extracted, Failed, Generated, Item, LeftForReview, NoQuestion, NotInDocuments,
                         Outcome, Preempted, Slow)

log = logging.getLogger(__name__)


class DocumentsChanged(RuntimeError):
    """A grounded answer's passages were replaced while it was generated: it is generated again from the new."""


# Worth a retry: the database or Redis briefly unreachable, a backend endpoint busy, the documents changed
# under a generation. Nothing else is retried.
TRANSIENT_ERRORS = (OperationalError, redis.ConnectionError, redis.TimeoutError, BackendUnavailable, DocumentsChanged)


def settle(outcome: Outcome | NoQuestion, backend: Backend) -> dict | None | Exception:
    """Act on one job's outcome; return the answer served, None, or the exception that failed the job.

    `backend` is the model that generated the answer: the LLM judge scores with it.
    """
    match outcome:
        case Generated(item, generation, level, latency_ms):
            return complete(item, backend, generation, level, latency_ms)
        case Slow(item, error, timeout_s):
            return retry_or_fail(item, error, timeout_s)
        case Failed(item, error):
            return retry_or_fail(item, error) if isinstance(error, TRANSIENT_ERRORS) else fail(item, error)
        case Preempted(item):
            send_back([item])
            return None
        case AlreadyDone(item, job_finished):
            served = item.ctx.store.lookup(item.question.qhash)
            if not job_finished:  # it keeps its outcome: a late redelivery must not rewrite a failure
                item.ctx.jobs.finish(item.request.job_id, item.ctx.ns, item.question.qhash,
                                     answer_id=served[0]["answer_id"] if served else None)
            return served[0] if served else None
        case LeftForReview(item, reason):
            return _leave_for_review(item, reason)
        case NotInDocuments(item):
            return _without_model(item, _not_in_documents)
        case Extracted(item):
            return _without_model(item, _store_extract)
        case NoQuestion(_, question_id):
            return ValueError(f"question {question_id} does not exist")
    raise TypeError(f"not an outcome: {outcome!r}")


def complete(item: Item, backend: Backend, gen: Generation, level: str, latency_ms: float) -> dict | None | Exception:
    """Store one generated answer, index its question, queue its detailed answer and finish its job."""
    ctx, request, question = item.ctx, item.request, item.question
    logs.request_id.set(request.request_id)
    try:
        if item.passages and not passages_current(ctx.sessions, [p.passage_id for p in item.passages]):
            raise DocumentsChanged("its passages changed while it was generated")
        payload, components = _store(ctx, backend, item, gen, level, latency_ms)
        _index(ctx, question.id)
        if not ctx.store.servable_answer(payload["answer_id"]):
            if not item.passages:
                return _gated(item, payload)
            if level != "quick":
                return _leave_for_review(item, "the detailed answer did not pass (its passages do not support it, "
                                         "or its quality); the quick answer stays")
            # The passages' own sentences now, rather than the asker waiting on regenerations.
            payload = _store_extract(item, payload, components)
        if request.kind == "renew":
            ctx.store.supersede(question.id, question.qhash, payload["answer_id"])
        if level == "quick" and not item.passages and not ctx.store.has_level(question.id, "detailed"):
            # Queued before the quick job finishes, so a streaming asker always finds it.
            ctx.jobs.enqueue(ctx.ns, question.qhash, lambda: question.id, kind="detailed")
    except TRANSIENT_ERRORS as exc:
        return retry_or_fail(item, exc)
    except Exception as exc:
        return fail(item, exc)
    ctx.jobs.finish(request.job_id, ctx.ns, question.qhash, answer_id=payload["answer_id"])
    return payload


def _gated(item: Item, payload: dict) -> None:
    """Handle an answer that failed the quality gate: regenerate within the same job, or leave it for review."""
    ctx, request, question = item.ctx, item.request, item.question
    threshold, failed = ctx.settings.quality_threshold, ctx.store.gated_count(question.id)
    log.warning("answer %s to question %s has quality %.3f < %.2f: kept for review, not served",
                payload["answer_id"], question.id, payload["quality"], threshold)
    if request.kind != "detailed" and failed < ctx.settings.quality_max_tries:
        ctx.jobs.continue_with("regenerate", question.id, request.job_id)  # waiting askers keep waiting
        return None
    return _leave_for_review(item, f"quality {payload['quality']:.3f} is below the threshold {threshold}; "
                             "the answer is kept for review")


def _leave_for_review(item: Item, reason: str) -> None:
    """Finish the job without a servable answer, for the reason given; its answers stay for review."""
    item.ctx.jobs.finish(item.request.job_id, item.ctx.ns, item.question.qhash, error=reason)


def retry_or_fail(item: Item, exc: Exception, timeout_s: float | None = None) -> Exception | None:
    """After a transient error, send the job again with a doubling delay (it stays pending); past
    GENERATION_MAX_RETRIES, fail it. `timeout_s`: the time limit its next generation gets (a slow one's),
    at most what fits in the broker's visibility timeout."""
    ctx, request = item.ctx, item.request
    settings = ctx.settings
    try:
        attempt = int(ctx.redis.hincrby(keys.job(request.job_id), "retries", 1))
        if timeout_s:
            budget = min(timeout_s, 0.8 * settings.broker_visibility_timeout_s, 4 * settings.generation_timeout_s)
            ctx.redis.hset(keys.job(request.job_id), "timeout_s", max(budget, settings.generation_timeout_s))
        if attempt <= settings.generation_max_retries:
            delay = min(60.0, settings.generation_retry_backoff_s * 2 ** (attempt - 1))
            log.warning("transient error, retry %d of %d in %.1f s: %s", attempt, settings.generation_max_retries,
                        delay, exc)
            ctx.jobs.continue_with(request.kind, request.question_id, request.job_id, countdown=delay)
            return None
    except redis.RedisError as broker_down:  # nowhere to queue a retry: the sweep queues the question again
        log.warning("cannot queue a retry (%s); the sweep will queue the question again", broker_down)
        return exc
    return fail(item, RuntimeError(f"gave up after {attempt - 1} retries: {exc}"))


def fail(item: Item, exc: Exception) -> Exception:
    """Finish the job as failed, with the reason; return the exception as its outcome."""
    item.ctx.jobs.finish(item.request.job_id, item.ctx.ns, item.question.qhash, error=f"{type(exc).__name__}: {exc}")
    return exc


def send_back(items: list[Item]) -> None:
    """Send jobs back to the queue their last message came from; they stay pending."""
    for item in items:
        item.ctx.jobs.continue_with(item.request.kind, item.request.question_id, item.request.job_id)
    log.info("askers waiting: %d background answers sent back to their queue", len(items))


def _store(ctx: AppContext, backend: Backend, item: Item, gen: Generation, level: str,
           latency_ms: float) -> tuple[dict, dict]:
    """Score and store one generated answer (with the passages it was written from); return its payload and its
    quality components. An empty one is never cached."""
    settings, question = ctx.settings, item.question
    if not gen.text.strip():
        raise BackendError("the model returned an empty answer; nothing was cached")
    text, finish_reason = finished(gen.text, gen.finish_reason)
    judge = llm_judge(backend) if settings.quality_judge else None  # the LLM judge uses the generation model
    passages = [passage.text for passage in item.passages] if item.passages else None
    result = Scorer(embedder_for(settings, threads=None), judge, settings.grounded_min_support).score(
        question.text, text, reference=ctx.store.reference(question.id), mean_logprob=gen.mean_logprob,
        finish_reason=finish_reason, passages=passages)
    log.info("generated answer for question %s in %.0f ms (%d tokens, quality %.3f)", question.id, latency_ms,
             gen.completion_tokens, result.quality)
    # Saying what its passages do not: stored never to be served, whatever QUALITY_THRESHOLD says.
    unsupported = passages is not None and result.components.get("unsupported", 1.0) < 1.0
    return _save(
        item,
        text,
        level=level,
        model=settings.llm_model,
        quality=result.quality,
        quality_components={**result.components, "finish_reason": finish_reason},
        latency_ms=round(latency_ms, 1),
        prompt_tokens=gen.prompt_tokens,
        completion_tokens=gen.completion_tokens,
        mean_logprob=gen.mean_logprob,
        job_id=item.request.job_id,
        review="unsupported" if unsupported else None,
    ), result.components


def _save(item: Item, text: str, **fields) -> dict:
    """Store an answer of the item's question with how it was grounded and its sources (the documents behind
    them recorded: a change of one outdates it)."""
    passages = item.passages
    return item.ctx.store.save_answer(item.question.id, text, grounding=item.grounding,
                                      sources=[passage.source() for passage in passages],
                                      documents={passage.document_id for passage in passages}, **fields)


def _store_extract(item: Item, generated: dict | None = None, components: dict | None = None) -> dict:
    """Store and serve the best passage's own sentences: in place of a generated answer its passages do not
    support (kept, never served: review "unsupported"), or of any where the model is not used."""
    ctx, question = item.ctx, item.question
    text = extractive_answer(question.text, list(item.passages))
    result = Scorer(embedder_for(ctx.settings, threads=None), None, ctx.settings.grounded_min_support).score(
        question.text, text, passages=[passage.text for passage in item.passages])
    replaced = {}
    if generated is not None:
        log.info("answer %s to question %s did not pass (groundedness %.2f): serving the passage's own "
                 "sentences", generated["answer_id"], question.id, (components or {}).get("groundedness", 0.0))
        replaced = {"replaces": generated["answer_id"]}
    # Served whatever the relevance score says: it is the team's own text, cited (quality None, as curated).
    return _save(item, text, level="quick", model="extractive", quality=None,
                 quality_components={**result.components, "extractive": True, **replaced},
                 job_id=item.request.job_id)


def _without_model(item: Item, write) -> dict | Exception | None:
    """Store the answer `write(item)` gives without the model, index its question, finish its job."""
    try:
        payload = write(item)
        _index(item.ctx, item.question.id)
    except TRANSIENT_ERRORS as exc:
        return retry_or_fail(item, exc)
    except Exception as exc:
        return fail(item, exc)
    item.ctx.jobs.finish(item.request.job_id, item.ctx.ns, item.question.qhash, answer_id=payload["answer_id"])
    return payload


def _not_in_documents(item: Item) -> dict:
    """Store the configured answer of a question the tenant's documents do not cover (no sources); it is
    outdated when they change (precache.documents.changes)."""
    ctx, question = item.ctx, item.question
    log.info("question %s: no passage of the documents is relevant; the not-in-documents answer is served",
             question.id)
    return ctx.store.save_answer(question.id, not_in_documents_answer(ctx.settings, question.text),
                                 grounding="not_in_documents", sources=[], model="documents",
                                 quality_components={"not_in_documents": True}, job_id=item.request.job_id)


def _index(ctx: AppContext, question_id: int) -> None:
    """Make the answered question findable by the semantic tier (no-op when it is indexed)."""
    if not ctx.settings.semantic_enabled:
        return
    try:
        index_question(ctx, embedder_for(ctx.settings, threads=None), question_id)
    except Exception as exc:  # the answer is stored and served exactly; only paraphrases miss it
        log.warning("cannot index question %s for the semantic tier: %s", question_id, exc)
