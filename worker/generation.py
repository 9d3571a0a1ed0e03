"""Generate, store and announce answers, a batch at a time: the body of the generation tasks."""

import logging
import time

import redis
from sqlalchemy.exc import OperationalError
from dataclasses import dataclass

from precache import keys, logs
from precache.tokens import TokenSink
from precache.jobs import PENDING
from precache.semantic.embedders import embedder_for
from precache.semantic.store import index_question
from worker.quality import Scorer, finished, llm_judge
from precache.telemetry import record_batch, record_generation
from precache.models import Question
from worker.backends import (Backend, BackendError, BackendUnavailable, Generation, GenerationStuck,
                             GenerationTimeout)
from worker.timeout import GenerationPreempted, generate_within

log = logging.getLogger(__name__)
# Worth a retry: the database or Redis briefly unreachable, a backend endpoint busy. Nothing else is retried.
TRANSIENT_ERRORS = (OperationalError, redis.ConnectionError, redis.TimeoutError, BackendUnavailable)


def chat_for(settings, question: str, level: str = "quick") -> list[dict]:
    """Return the chat sent to the model for a question at an answer level."""
    system = settings.system_prompt
    if level == "detailed":
        system = f"{system} {settings.detailed_instruction}"
    return [{"role": "system", "content": system}, {"role": "user", "content": question}]


def _already_done(ctx, question, kind: str) -> bool:
    """Tell whether the work of this job kind is already in the store (redelivery, a duplicate)."""
    if kind == "renew":
        return False  # an asker's no-cache: a new answer, whatever is stored
    if kind == "quick":
        return ctx.store.lookup(question.qhash) is not None
    return ctx.store.has_level(question.id, "detailed" if kind == "detailed" else "quick")


@dataclass(frozen=True)
class JobRequest:
    """One generation job as a worker receives it."""

    question_id: int
    job_id: str
    kind: str = "quick"  # quick, refresh, regenerate, renew or detailed
    request_id: str = "-"
    tenant: str = ""  # the namespace the answer is stored in


def answer_question(ctx, backend: Backend, question_id: int, job_id: str, kind: str = "quick",
                    worker: str = "") -> dict | None:
    """Run one generation job (quick, refresh, regenerate or detailed) unless its work is done; finish the job."""
    request = JobRequest(question_id, job_id, kind, logs.request_id.get(), getattr(ctx, "tenant", ""))
    [outcome] = answer_questions(ctx, backend, [request], worker)
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


def answer_questions(ctx, backend: Backend, requests: list[JobRequest], worker: str = "",
                     askers_waiting=lambda: False) -> list:
    """Run a batch of jobs: settle those already done, generate the rest together, finish each job.

    Returns one outcome per request, in order: the answer payload, None, or the exception that failed it.
    Detailed answers (background work) yield to askers: before each backend call of them (each answer,
    on a backend that generates one after the other) `askers_waiting()` is asked, and when it is true the
    rest of them is sent back to their queue, pending, and the batch returns.
    An answer below the quality threshold is stored for review but not served; its job goes on with a
    regeneration (detailed settings) until one passes or QUALITY_MAX_TRIES answers failed; once the
    greedy detailed answer failed too, regenerations sample at REGENERATE_TEMPERATURE.
    """
    outcomes: list = [None] * len(requests)
    # (level, sampled, alone) -> jobs; quick first: its askers are waiting. A question the worker died
    # while generating is generated alone, so that a model crashing on it takes no other job down with it.
    todo: dict[tuple[str, bool, bool], list] = {
        (level, sampled, alone): [] for level, sampled in (("quick", False), ("detailed", False), ("detailed", True))
        for alone in (False, True)}
    first: dict[tuple, int] = {}
    duplicates: list = []
    for i, request in enumerate(requests):
        rctx = ctx.for_tenant(request.tenant)
        question = _load_question(rctx, request.question_id)
        if question is None:
            outcomes[i] = ValueError(f"question {request.question_id} does not exist")
        elif (settled := _settle(rctx, question, request)) is not None:
            outcomes[i] = settled[0]
        else:
            gated = rctx.store.gated_count(question.id) if request.kind != "detailed" else 0
            if gated >= ctx.settings.quality_max_tries:
                rctx.jobs.finish(request.job_id, rctx.ns, question.qhash, error=f"{gated} answers failed the "
                                 "quality gate; the question is left for review")
                continue
            crashes = _crashes(rctx, question)
            if crashes >= ctx.settings.generation_max_crashes:
                log.error("question %s: the worker died during %d generations of it; not running the model on it "
                          "again (PRECACHE_GENERATION_MAX_CRASHES)", question.id, crashes)
                outcomes[i] = _fail(rctx, request, question, RuntimeError(
                    f"the worker died during {crashes} generations of this question (the model crashes on it?); "
                    "given up, see PRECACHE_GENERATION_MAX_CRASHES"))
                continue
            # A regeneration (an earlier answer failed the gate) uses the detailed settings.
            level = "detailed" if request.kind == "detailed" or gated else "quick"
            sampled = gated >= 2 and ctx.settings.regenerate_temperature > 0
            key = (level, rctx.ns, question.id)
            if key in first:  # the same question twice in one batch (a redelivery, the sweep): generate once
                duplicates.append((i, request, question, rctx))
                continue
            first[key] = i
            todo[level, sampled, crashes > 0].append((i, request, question, rctx, gated))
    for (level, sampled, alone), items in todo.items():
        size = 1 if alone or (level == "detailed" and backend.sequential) else ctx.settings.llm_max_batch
        for start in range(0, len(items), size):
            if level == "detailed" and _yield_to_askers(items[start:], askers_waiting, outcomes):
                break
            chunk = items[start:start + size]
            # Seeded by the questions and their tries: each sampled try differs from the one before.
            seed = sum(question.id * 1000 + gated for _, _, question, _, gated in chunk) if sampled else 0
            chunk = [item[:4] for item in chunk]
            for i, outcome in _generate_batch(ctx, backend, chunk, level, worker,
                                              ctx.settings.regenerate_temperature if sampled else 0.0, seed,
                                              preempt=askers_waiting if level == "detailed" else None):
                outcomes[i] = outcome
    for i, request, question, rctx in duplicates:  # finished with what the first copy stored
        settled = _settle(rctx, question, request)
        outcomes[i] = settled[0] if settled is not None else _fail(
            rctx, request, question, RuntimeError("the same question earlier in its batch got no servable answer"))
    return outcomes


def _yield_to_askers(items: list, askers_waiting, outcomes: list) -> bool:
    """Send background jobs back to their queue when askers' work waits; tell whether it did."""
    try:
        if not askers_waiting():
            return False
        for i, _ in _send_back([item[:4] for item in items]):
            outcomes[i] = None
    except (redis.RedisError, OSError) as exc:  # the broker cannot say or take them: go on generating
        log.warning("cannot yield to askers: %s", exc)
        return False
    return True


def _send_back(items: list) -> list[tuple[int, None]]:
    """Send jobs back to the queue their last message came from; they stay pending."""
    for _, request, _, rctx in items:
        rctx.jobs.continue_with(request.kind, request.question_id, request.job_id)
    log.info("askers waiting: %d background answers sent back to their queue", len(items))
    return [(i, None) for i, _, _, _ in items]


def _load_question(ctx, question_id: int) -> Question | None:
    """Return the question to answer: a paraphrase linked to a canonical question is answered through it."""
    with ctx.sessions() as session:
        question = session.get(Question, question_id)
        if question is not None and question.canonical_id:
            question = session.get(Question, question.canonical_id) or question
        return question


def _settle(ctx, question, request: JobRequest) -> tuple[dict | None] | None:
    """Finish the job at once if it is no longer pending or its work is in the store (redelivery, a duplicate).

    Returns (the answer served, or None) when it did, None when the job still has work to do.
    """
    record = ctx.jobs.get(request.job_id)
    finished = bool(record and record["status"] != PENDING)
    if not (finished or _already_done(ctx, question, request.kind)):
        return None
    served = ctx.store.lookup(question.qhash)
    if not finished:  # a job already finished keeps its outcome (a late redelivery must not rewrite a failure)
        ctx.jobs.finish(request.job_id, ctx.ns, question.qhash, answer_id=served[0]["answer_id"] if served else None)
    return (served[0] if served else None,)


def _generate_batch(ctx, backend, items: list, level: str, worker: str, temperature: float = 0.0,
                    seed: int = 0, timeout_s: float | None = None, preempt=None,
                    until: float | None = None) -> list[tuple[int, object]]:
    """Generate the answers of one batch in one backend call; store each and finish its job.

    A batch that passes its time on a busy machine is stopped and generated again in halves, down to
    one question, which gets twice the time, up to four times PRECACHE_GENERATION_TIMEOUT_S; past that
    its job is sent again later like any transient error. Slow is never failed at once. A batch with
    `preempt` (background work) is stopped between two tokens when `preempt()` says askers' work waits,
    and its jobs are sent back to their queue.
    """
    settings = ctx.settings
    timeout_s = timeout_s or settings.generation_timeout_s
    # Retries of a slow batch end well within the visibility timeout: its messages stay unacknowledged meanwhile.
    until = until or time.monotonic() + 0.8 * settings.broker_visibility_timeout_s
    limit = settings.llm_max_tokens_detailed if level == "detailed" else settings.llm_max_tokens_quick
    chats = [chat_for(settings, question.text, level) for _, _, question, _ in items]
    log.info("generating a %s batch of %d%s", level, len(items), f" (sampled at {temperature:g})" if temperature else "")
    started = time.perf_counter()
    _count(ctx, items, "started")
    # Askers' quick answers are streamed as they are generated (precache.tokens); background work is not.
    sink = TokenSink(ctx.redis, [request.job_id if request.kind in ("quick", "renew") else None
                                 for _, request, _, _ in items])
    try:
        gens = generate_within(backend, chats, limit, timeout_s, preempt=preempt, temperature=temperature, seed=seed,
                               on_token=sink)
        sink.end([gen.finish_reason for gen in gens])
    except Exception as exc:
        sink.end(["error"] * len(items))
        _count(ctx, items, "ended")
        if isinstance(exc, GenerationPreempted):
            return _send_back(items)
        if isinstance(exc, GenerationTimeout) and not isinstance(exc, GenerationStuck):
            return _slow(ctx, backend, items, level, worker, temperature, seed, timeout_s, exc, until)
        log.error("generating a %s batch of %d failed: %s", level, len(items), exc)
        if isinstance(exc, GenerationStuck):
            runtime_discard_backend()  # its thread may still run: the next batch gets a fresh model
        settle = _retry_or_fail if isinstance(exc, TRANSIENT_ERRORS) else _fail
        return [(i, settle(rctx, request, question, exc)) for i, request, question, rctx in items]
    _count(ctx, items, "ended")
    latency_ms = (time.perf_counter() - started) * 1000
    log.info("generated a %s batch of %d in %.0f ms", level, len(items), latency_ms)
    record_batch(ctx.redis, backend.name, worker)
    outcomes = []
    for (i, request, question, rctx), gen in zip(items, gens, strict=True):
        ctx.redis.incr(keys.generations(level))
        # Each answer of a batch counts its share of the batch's time, so totals give real throughput.
        record_generation(ctx.redis, backend.name, worker, latency_ms / 1000 / len(items), gen.completion_tokens)
        outcomes.append((i, _complete(rctx, request, question, gen, level, latency_ms)))
    return outcomes


def _slow(ctx, backend, items: list, level: str, worker: str, temperature: float, seed: int, timeout_s: float,
          exc: Exception, until: float) -> list[tuple[int, object]]:
    """Generate again a batch that was stopped for passing its time: in halves, then alone with more time, while
    the attempt (its time and its stop) ends before `until`; past that, its jobs are sent again later."""
    def again(part: list, timeout: float) -> list[tuple[int, object]]:
        if time.monotonic() + 2 * timeout > until:
            return [(i, _retry_or_fail(rctx, request, question, exc)) for i, request, question, rctx in part]
        return _generate_batch(ctx, backend, part, level, worker, temperature, seed, timeout, until=until)

    if len(items) > 1:
        half = len(items) // 2
        log.warning("a %s batch of %d passed %.0f s: generating it again in two halves", level, len(items), timeout_s)
        return again(items[:half], timeout_s) + again(items[half:], timeout_s)
    if timeout_s < 4 * ctx.settings.generation_timeout_s:
        log.warning("a %s answer passed %.0f s: generating it again with %.0f s", level, timeout_s, 2 * timeout_s)
        return again(items, 2 * timeout_s)
    return [(i, _retry_or_fail(rctx, request, question, exc)) for i, request, question, rctx in items]


def _crashes(ctx, question) -> int:
    """Return how many generations of this question began and never returned: the worker died during them."""
    try:
        started, ended = ctx.redis.hmget(keys.generating(ctx.ns, question.qhash), "started", "ended")
    except redis.RedisError:
        return 0  # not knowing is no reason to refuse a question
    return max(0, int(started or 0) - int(ended or 0))


def _count(ctx, items: list, field: str) -> None:
    """Count a generation of each question of a batch as started, or as ended (it returned or raised)."""
    pipe = ctx.redis.pipeline()  # tenant contexts share the connection; one round trip for the batch
    for _, _, question, rctx in items:
        name = keys.generating(rctx.ns, question.qhash)
        pipe.hincrby(name, field, 1)
        pipe.expire(name, ctx.settings.job_ttl_s)
    try:
        pipe.execute()
    except redis.RedisError as exc:
        log.warning("cannot count a batch of %d generations as %s: %s", len(items), field, exc)


def _complete(ctx, request: JobRequest, question, gen: Generation, level: str, latency_ms: float):
    """Store one generated answer, index its question, queue its detailed answer and finish its job."""
    logs.request_id.set(request.request_id)
    try:
        payload = _store(ctx, question, gen, request.job_id, level, latency_ms)
        _index(ctx, question.id)
        if not ctx.store.servable_answer(payload["answer_id"]):
            return _gated(ctx, request, question, payload)
        if request.kind == "renew":
            ctx.store.supersede(question.id, question.qhash, payload["answer_id"])
        if level == "quick" and not ctx.store.has_level(question.id, "detailed"):
            # Queued before the quick job finishes, so a streaming asker always finds it.
            ctx.jobs.enqueue(ctx.ns, question.qhash, lambda: question.id, kind="detailed")
    except TRANSIENT_ERRORS as exc:
        return _retry_or_fail(ctx, request, question, exc)
    except Exception as exc:
        return _fail(ctx, request, question, exc)
    ctx.jobs.finish(request.job_id, ctx.ns, question.qhash, answer_id=payload["answer_id"])
    return payload


def _gated(ctx, request: JobRequest, question, payload: dict) -> None:
    """Handle an answer that failed the quality gate: regenerate within the same job, or leave it for review."""
    threshold, failed = ctx.settings.quality_threshold, ctx.store.gated_count(question.id)
    log.warning("answer %s to question %s has quality %.3f < %.2f: kept for review, not served",
                payload["answer_id"], question.id, payload["quality"], threshold)
    if request.kind != "detailed" and failed < ctx.settings.quality_max_tries:
        ctx.jobs.continue_with("regenerate", question.id, request.job_id)  # waiting askers keep waiting
        return None
    ctx.jobs.finish(request.job_id, ctx.ns, question.qhash, error=f"quality {payload['quality']:.3f} is below "
                    f"the threshold {threshold}; the answer is kept for review")
    return None


def _retry_or_fail(ctx, request: JobRequest, question, exc: Exception):
    """After a transient error, send the job again with a doubling delay (it stays pending); past
    GENERATION_MAX_RETRIES, fail it."""
    settings = ctx.settings
    try:
        attempt = int(ctx.redis.hincrby(keys.job(request.job_id), "retries", 1))
        if attempt <= settings.generation_max_retries:
            delay = min(60.0, settings.generation_retry_backoff_s * 2 ** (attempt - 1))
            log.warning("transient error, retry %d of %d in %.1f s: %s", attempt, settings.generation_max_retries,
                        delay, exc)
            ctx.jobs.continue_with(request.kind, request.question_id, request.job_id, countdown=delay)
            return None
    except redis.RedisError as broker_down:  # nowhere to queue a retry: the sweep queues the question again
        log.warning("cannot queue a retry (%s); the sweep will queue the question again", broker_down)
        return exc
    return _fail(ctx, request, question, RuntimeError(f"gave up after {attempt - 1} retries: {exc}"))


def runtime_discard_backend() -> None:
    from worker import runtime

    runtime.discard_backend()


def _fail(ctx, request: JobRequest, question, exc: Exception) -> Exception:
    ctx.jobs.finish(request.job_id, ctx.ns, question.qhash, error=f"{type(exc).__name__}: {exc}")
    return exc


def _store(ctx, question, gen: Generation, job_id: str, level: str, latency_ms: float) -> dict:
    """Score and store one generated answer; an empty one is never cached."""
    settings = ctx.settings
    if not gen.text.strip():
        raise BackendError("the model returned an empty answer; nothing was cached")
    text, finish_reason = finished(gen.text, gen.finish_reason)
    judge = llm_judge(runtime_backend()) if settings.quality_judge else None
    result = Scorer(embedder_for(settings, threads=None), judge).score(
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


def runtime_backend() -> Backend:
    """Return this worker's loaded model (the LLM judge uses the generation model)."""
    from worker import runtime

    return runtime.backend()


def _index(ctx, question_id: int) -> None:
    """Make the answered question findable by the semantic tier (no-op when it is indexed)."""
    if not ctx.settings.semantic_enabled:
        return
    try:
        index_question(ctx, embedder_for(ctx.settings, threads=None), question_id)
    except Exception as exc:  # the answer is stored and served exactly; only paraphrases miss it
        log.warning("cannot index question %s for the semantic tier: %s", question_id, exc)
