"""The answer ladder: exact, template, generated within the deadline, fallback."""

import logging
import time
from dataclasses import dataclass, field

import redis
from flask import current_app
from kombu.exceptions import OperationalError as BrokerError
from sqlalchemy.exc import SQLAlchemyError

from precache import recovery
from precache.jobs import PENDING, READY
from precache.logs import request_id
from web import inflight, metrics
from web.intents import match_intent

log = logging.getLogger(__name__)
# Redis (locks, job records) or the broker unreachable: the question cannot be queued now.
QUEUE_ERRORS = (redis.RedisError, BrokerError, OSError)


@dataclass
class Ask:
    """One question on its way down the ladder."""

    question: str
    normalized: str
    qhash: str
    detail: str = "quick"
    deadline: float = field(default_factory=time.monotonic)  # monotonic time the asker stops waiting
    vector: object = None  # the question's embedding, once the semantic tier computed it
    hot_missed: bool = False  # the hot cache was read for this question and had no answer (web/ask.py)

    def remaining(self) -> float:
        return max(0.0, self.deadline - time.monotonic())


@dataclass
class Outcome:
    status: int
    body: dict
    stale: bool = False


def ready_body(payload: dict, source: str, **extra) -> dict:
    """Return the 200 body for a stored answer."""
    body = {"status": "ready", "answer": payload["answer"], "source": source, "quality": payload["quality"],
            "answer_id": payload["answer_id"], "matched_question": payload["matched_question"]}
    if payload.get("level"):
        body["level"] = payload["level"]
    return body | extra


def pending_body(job_id: str, fallback: str) -> dict:
    """Return the 202 body for a question being generated."""
    return {"status": "pending", "job_id": job_id, "answer": fallback, "source": "fallback",
            "poll": f"/v1/jobs/{job_id}"}


def climb(ctx, ask: Ask) -> Outcome:
    """Answer one ask from the first tier that can."""
    return instant(ctx, ask) or _miss(ctx, ask)


def instant(ctx, ask: Ask) -> Outcome | None:
    """Answer from the cache (exact, then semantic) or a template; None when it is a miss."""
    hit = ctx.store.lookup(ask.qhash, hot=not ask.hot_missed)
    if hit is not None:
        return _cached(ctx, ask, hit[0], "exact")
    semantic = _semantic(ctx, ask)
    if semantic is not None:
        return semantic
    intent = match_intent(current_app.extensions["precache_intents"], ask.normalized)
    if intent is not None:
        return Outcome(200, {"status": "ready", "answer": intent.answer, "source": "template", "quality": None,
                             "answer_id": None, "matched_question": None, "intent": intent.name})
    return None


def exact(ctx, ask: Ask, payload: dict) -> Outcome:
    """Serve an answer the hot cache holds for the question itself."""
    return _cached(ctx, ask, payload, "exact")


def _semantic(ctx, ask: Ask) -> Outcome | None:
    tier = current_app.extensions["precache_semantic"]
    ask.vector = tier.vector(ask.question)
    match = tier.match(ctx, ask.question, ask.vector, ask.qhash)
    hit = ctx.store.lookup(match.qhash) if match else None
    if hit is None:
        return None
    return _cached(ctx, ask, hit[0], "semantic", similarity=round(match.similarity, 4))


def _cached(ctx, ask: Ask, payload: dict, source: str, **extra) -> Outcome:
    """Serve a stored answer; queue a refresh when stale, and a detailed answer when asked for."""
    stale = bool(payload.get("expires_at") and payload["expires_at"] < time.time())
    if stale:
        extra["stale"] = True
        _refresh(ctx, payload)
    if ask.detail == "detailed" and payload.get("level") == "quick" and not payload.get("curated"):
        try:
            detailed = _wait_detailed(ctx, ask, payload)
            if detailed is None:
                extra["job_id"] = ctx.jobs.pending_job(ctx.ns, payload["qhash"], "detailed")
        except (*QUEUE_ERRORS, SQLAlchemyError) as exc:  # the quick answer is still an answer
            log.warning("cannot queue or read a detailed answer: %s", exc)
            return Outcome(200, ready_body(payload, source, **extra), stale)
        if detailed is not None:
            return Outcome(200, ready_body(detailed, "generated"), stale)
    return Outcome(200, ready_body(payload, source, **{k: v for k, v in extra.items() if v is not None}), stale)


def _refresh(ctx, payload: dict) -> None:
    """Queue a refresh of a stale answer's question."""
    try:
        ctx.jobs.enqueue(ctx.ns, payload["qhash"], lambda: payload["question_id"], request_id.get(), "refresh")
    except QUEUE_ERRORS as exc:  # the stale answer is still served; the next hit queues the refresh
        log.warning("cannot queue a refresh: %s", exc)


def _wait_detailed(ctx, ask: Ask, payload: dict) -> dict | None:
    job_id, _ = ctx.jobs.enqueue(ctx.ns, payload["qhash"], lambda: payload["question_id"], request_id.get(),
                                 "detailed")
    record = ctx.jobs.wait(job_id, ask.remaining())
    if record and record["status"] == READY and record.get("answer_id"):
        answer = ctx.store.answer_by_id(int(record["answer_id"]))
        return answer if answer and answer["level"] == "detailed" else None
    return None


def _join_paraphrase(ctx, ask: Ask) -> str | None:
    """Return the pending job of a question that means the same, if any (one generation for both)."""
    if ask.vector is None:
        return None
    job_id = inflight.find(ctx.redis, ctx.ns, ask.question, ask.vector, ctx.settings.semantic_join_similarity)
    record = ctx.jobs.get(job_id) if job_id else None
    return job_id if record and record["status"] == PENDING else None


def renew(ctx, ask: Ask) -> str:
    """Queue a new answer for the question whatever is cached (an asker's no-cache); return its job id."""
    job_id, joined = ctx.jobs.enqueue(ctx.ns, ask.qhash, lambda: _store_question(ctx, ask), request_id.get(), "renew")
    (metrics.JOINS if joined else metrics.MISSES).inc()
    return job_id


def _store_question(ctx, ask: Ask) -> int:
    """Store a new question (first asker only, before its task is sent) and announce it as in flight."""
    question_id = ctx.store.ensure_question(ask.question.strip(), ask.normalized, ask.qhash)
    if ask.vector is not None:
        job_id = ctx.jobs.pending_job(ctx.ns, ask.qhash, "quick")
        if job_id:
            inflight.register(ctx.redis, ctx.ns, job_id, ask.question, ask.vector)
    return question_id


def _deferred(ctx, ask: Ask, reason: Exception) -> Outcome:
    """Record a question that cannot be queued now (SQL, else Redis); the sweep queues it later."""
    log.warning("cannot queue a miss now, the question is kept for the sweep: %s", reason)
    try:
        ctx.store.ensure_question(ask.question.strip(), ask.normalized, ask.qhash)
    except SQLAlchemyError:
        recovery.defer(ctx.redis, recovery.QUESTION, text=ask.question.strip(), normalized=ask.normalized,
                       qhash=ask.qhash)  # a RedisError here leaves nowhere to keep it: the caller answers 503
    return Outcome(202, {"status": "pending", "answer": ctx.settings.fallback_answer, "source": "fallback",
                         "queued": False})


def _generated(ctx, ask: Ask, job_id: str) -> dict | None:
    """Wait for the job within the deadline; return its answer, or None when it is not ready in time."""
    try:
        record = ctx.jobs.wait(job_id, ask.remaining()) if ask.remaining() > 0 else None
        if record and record["status"] == READY:
            return ctx.store.answer_by_id(int(record["answer_id"]))
    except (*QUEUE_ERRORS, SQLAlchemyError) as exc:  # the job is queued: the asker gets the fallback and polls
        log.warning("cannot wait for job %s: %s", job_id, exc)
    return None


def _miss(ctx, ask: Ask) -> Outcome:
    try:
        job_id, joined = _join_paraphrase(ctx, ask), True
        if job_id is None:
            job_id, joined = ctx.jobs.enqueue(ctx.ns, ask.qhash, lambda: _store_question(ctx, ask),
                                              request_id=request_id.get())
    except (*QUEUE_ERRORS, SQLAlchemyError) as exc:
        return _deferred(ctx, ask, exc)
    (metrics.JOINS if joined else metrics.MISSES).inc()
    payload = _generated(ctx, ask, job_id)
    if payload is not None:  # as a cached answer: one asked for in detail waits for the detailed one too
        return _cached(ctx, ask, payload, "generated", job_id=job_id)
    body = pending_body(job_id, ctx.settings.fallback_answer)
    suggestions = current_app.extensions["precache_semantic"].suggestions(ctx, ask.vector)
    if suggestions:
        body["suggestions"] = suggestions
    return Outcome(202, body)
