"""Generate, store and announce one answer: the body of the generation tasks."""

import logging
import math
import time

from precache import keys
from precache.jobs import PENDING
from precache.embedder import embedder_for
from precache.semantic_store import index_question
from precache.telemetry import record_generation
from precache.models import Question
from worker.backends import Backend, BackendError

log = logging.getLogger(__name__)


def chat_for(settings, question: str, level: str = "quick") -> list[dict]:
    """Return the chat sent to the model for a question at an answer level."""
    system = settings.system_prompt
    if level == "detailed":
        system = f"{system} {settings.detailed_instruction}"
    return [{"role": "system", "content": system}, {"role": "user", "content": question}]


def _already_done(ctx, question, kind: str) -> bool:
    """Tell whether the work of this job kind is already in the store (redelivery, a duplicate)."""
    if kind == "quick":
        return ctx.store.lookup(question.qhash) is not None
    return ctx.store.has_level(question.id, "detailed" if kind == "detailed" else "quick")


def answer_question(ctx, backend: Backend, question_id: int, job_id: str, kind: str = "quick",
                    worker: str = "") -> dict | None:
    """Run one generation job (quick, refresh or detailed) unless its work is done; finish the job."""
    with ctx.sessions() as session:
        question = session.get(Question, question_id)
    if question is None:
        raise ValueError(f"question {question_id} does not exist")
    record = ctx.jobs.get(job_id)
    if (record and record["status"] != PENDING) or _already_done(ctx, question, kind):
        served = ctx.store.lookup(question.qhash)
        ctx.jobs.finish(job_id, ctx.ns, question.qhash, answer_id=served[0]["answer_id"] if served else None)
        return served[0] if served else None
    level = "detailed" if kind == "detailed" else "quick"
    try:
        payload = _generate_and_store(ctx, backend, question, job_id, level, worker)
        _index(ctx, question.id)
        if level == "quick" and not ctx.store.has_level(question.id, "detailed"):
            # Queued before the quick job finishes, so a streaming asker always finds it.
            ctx.jobs.enqueue(ctx.ns, question.qhash, lambda: question.id, kind="detailed")
    except Exception as exc:
        ctx.jobs.finish(job_id, ctx.ns, question.qhash, error=f"{type(exc).__name__}: {exc}")
        raise
    ctx.jobs.finish(job_id, ctx.ns, question.qhash, answer_id=payload["answer_id"])
    return payload


def _generate_and_store(ctx, backend, question, job_id, level, worker) -> dict:
    settings = ctx.settings
    limit = settings.llm_max_tokens_detailed if level == "detailed" else settings.llm_max_tokens_quick
    started = time.perf_counter()
    [gen] = backend.generate([chat_for(settings, question.text, level)], limit)
    latency_ms = (time.perf_counter() - started) * 1000
    ctx.redis.incr(keys.generations(level))
    record_generation(ctx.redis, backend.name, worker, latency_ms / 1000, gen.completion_tokens)
    if not gen.text.strip():
        raise BackendError("the model returned an empty answer; nothing was cached")
    confidence = math.exp(gen.mean_logprob)
    log.info("generated answer for question %s in %.0f ms (%d tokens)", question.id, latency_ms,
             gen.completion_tokens)
    return ctx.store.save_answer(
        question.id,
        gen.text.strip(),
        level=level,
        model=settings.llm_model,
        quality=round(confidence, 4),
        quality_components={"confidence": round(confidence, 4), "finish_reason": gen.finish_reason},
        latency_ms=round(latency_ms, 1),
        prompt_tokens=gen.prompt_tokens,
        completion_tokens=gen.completion_tokens,
        mean_logprob=gen.mean_logprob,
        job_id=job_id,
    )


def _index(ctx, question_id: int) -> None:
    """Make the answered question findable by the semantic tier (no-op when it is indexed)."""
    if not ctx.settings.semantic_enabled:
        return
    try:
        index_question(ctx, embedder_for(ctx.settings, threads=None), question_id)
    except Exception as exc:  # the answer is stored and served exactly; only paraphrases miss it
        log.warning("cannot index question %s for the semantic tier: %s", question_id, exc)
