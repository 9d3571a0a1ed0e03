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
from precache.semantic.embedders import embedder_for
from precache.semantic.store import index_question
from worker.backends import Backend, BackendError, BackendUnavailable, Generation
from worker.quality import Scorer, finished, llm_judge
from worker.work import (AlreadyDone, Failed, Generated, Item, LeftForReview, NoQuestion, Outcome, Preempted,
                         Slow)

log = logging.getLogger(__name__)
# Worth a retry: the database or Redis briefly unreachable, a backend endpoint busy. Nothing else is retried.
TRANSIENT_ERRORS = (OperationalError, redis.ConnectionError, redis.TimeoutError, BackendUnavailable)


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
        case NoQuestion(_, question_id):
            return ValueError(f"question {question_id} does not exist")
    raise TypeError(f"not an outcome: {outcome!r}")


def complete(item: Item, backend: Backend, gen: Generation, level: str, latency_ms: float) -> dict | None | Exception:
    """Store one generated answer, index its question, queue its detailed answer and finish its job."""
    ctx, request, question = item.ctx, item.request, item.question
    logs.request_id.set(request.request_id)
    try:
        payload = _store(ctx, backend, question, gen, request.job_id, level, latency_ms)
        _index(ctx, question.id)
        if not ctx.store.servable_answer(payload["answer_id"]):
            return _gated(item, payload)
        if request.kind == "renew":
            ctx.store.supersede(question.id, question.qhash, payload["answer_id"])
        if level == "quick" and not ctx.store.has_level(question.id, "detailed"):
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


def _store(ctx: AppContext, backend: Backend, question, gen: Generation, job_id: str, level: str,
           latency_ms: float) -> dict:
    """Score and store one generated answer; an empty one is never cached."""
    settings = ctx.settings
    if not gen.text.strip():
        raise BackendError("the model returned an empty answer; nothing was cached")
    text, finish_reason = finished(gen.text, gen.finish_reason)
    judge = llm_judge(backend) if settings.quality_judge else None  # the LLM judge uses the generation model
    result = Scorer(embedder_for(settings, threads=None), judge).score(
        question.text, text, reference=ctx.store.reference(question.id), mean_logprob=gen.mean_logprob,
        finish_reason=finish_reason)
    log.info("generated answer for question %s in %.0f ms (%d tokens, quality %.3f)", question.id, latency_ms,
             gen.completion_tokens, result.quality)
    return ctx.store.save_answer(
        question.id,
        text,
        level=level,
        model=settings.llm_model,
        quality=result.quality,
        quality_components={**result.components, "finish_reason": finish_reason},
        latency_ms=round(latency_ms, 1),
        prompt_tokens=gen.prompt_tokens,
        completion_tokens=gen.completion_tokens,
        mean_logprob=gen.mean_logprob,
        job_id=job_id,
    )


def _index(ctx: AppContext, question_id: int) -> None:
    """Make the answered question findable by the semantic tier (no-op when it is indexed)."""
    if not ctx.settings.semantic_enabled:
        return
    try:
        index_question(ctx, embedder_for(ctx.settings, threads=None), question_id)
    except Exception as exc:  # the answer is stored and served exactly; only paraphrases miss it
        log.warning("cannot index question %s for the semantic tier: %s", question_id, exc)
