"""Generate, store and announce one answer: the body of the generation tasks."""

import logging
import time

from precache import keys
from precache.jobs import PENDING
from precache.embedder import shared_embedder
from precache.semantic_store import index_question
from precache.quality import Scorer, llm_judge, trim_to_sentence
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
    """Run one generation job (quick, refresh, regenerate or detailed) unless its work is done; finish the job.

    An answer below the quality threshold is stored for review but not served; the job then goes on
    with a regeneration (detailed settings) until one passes or QUALITY_MAX_TRIES answers failed.
    """
    with ctx.sessions() as session:
        question = session.get(Question, question_id)
        if question is not None and question.canonical_id:  # a linked paraphrase: answer its canonical question
            question = session.get(Question, question.canonical_id) or question
    if question is None:
        raise ValueError(f"question {question_id} does not exist")
    record = ctx.jobs.get(job_id)
    if (record and record["status"] != PENDING) or _already_done(ctx, question, kind):
        served = ctx.store.lookup(question.qhash)
        ctx.jobs.finish(job_id, ctx.ns, question.qhash, answer_id=served[0]["answer_id"] if served else None)
        return served[0] if served else None
    settings = ctx.settings
    gated = ctx.store.gated_count(question.id) if kind != "detailed" else 0
    if gated >= settings.quality_max_tries:
        ctx.jobs.finish(job_id, ctx.ns, question.qhash, error=f"{gated} answers failed the quality gate; "
                        "the question is left for review")
        return None
    level = "detailed" if kind == "detailed" or gated else "quick"
    try:
        payload = _generate_and_store(ctx, backend, question, job_id, level, worker)
        _index(ctx, question.id)
        if not ctx.store.servable_answer(payload["answer_id"]):
            return _gated(ctx, question, job_id, kind, payload, gated + 1)
        if level == "quick" and not ctx.store.has_level(question.id, "detailed"):
            # Queued before the quick job finishes, so a streaming asker always finds it.
            ctx.jobs.enqueue(ctx.ns, question.qhash, lambda: question.id, kind="detailed")
    except Exception as exc:
        ctx.jobs.finish(job_id, ctx.ns, question.qhash, error=f"{type(exc).__name__}: {exc}")
        raise
    ctx.jobs.finish(job_id, ctx.ns, question.qhash, answer_id=payload["answer_id"])
    return payload


def _gated(ctx, question, job_id: str, kind: str, payload: dict, failed: int) -> None:
    """Handle an answer that failed the quality gate: regenerate within the job, or give up for review."""
    threshold = ctx.settings.quality_threshold
    log.warning("answer %s to question %s has quality %.3f < %.2f: kept for review, not served",
                payload["answer_id"], question.id, payload["quality"], threshold)
    if kind != "detailed" and failed < ctx.settings.quality_max_tries:
        ctx.jobs.continue_with("regenerate", question.id, job_id)
        return None
    ctx.jobs.finish(job_id, ctx.ns, question.qhash, error=f"quality {payload['quality']:.3f} is below the "
                    f"threshold {threshold}; the answer is kept for review")
    return None


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
    text, finish_reason = gen.text.strip(), gen.finish_reason
    if finish_reason == "length":  # cut at the token limit: keep the complete sentences
        trimmed = trim_to_sentence(text)
        text, finish_reason = trimmed, ("trimmed" if trimmed != text else finish_reason)
    judge = llm_judge(backend) if settings.quality_judge else None
    result = Scorer(shared_embedder(settings.embedding_model, threads=None), judge).score(
        question.text, text, reference=question.reference, mean_logprob=gen.mean_logprob,
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


def _index(ctx, question_id: int) -> None:
    """Make the answered question findable by the semantic tier (no-op when it is indexed)."""
    if not ctx.settings.semantic_enabled:
        return
    try:
        index_question(ctx, shared_embedder(ctx.settings.embedding_model, threads=None), question_id)
    except Exception as exc:  # the answer is stored and served exactly; only paraphrases miss it
        log.warning("cannot index question %s for the semantic tier: %s", question_id, exc)
