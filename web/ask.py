"""POST /v1/ask: the answer ladder (exact, template, generated, fallback)."""

import logging
import time

import redis
from flask import Blueprint, current_app, jsonify, request

from precache.jobs import READY
from precache.logs import request_id
from precache.models import AskLog
from precache.normalize import normalize, question_hash
from precache.templates import match_intent
from web import metrics
from web.errors import ApiError, error_response
from web.schemas import parse_ask

log = logging.getLogger(__name__)
bp = Blueprint("ask", __name__)


def ready_body(payload: dict, source: str) -> dict:
    """Return the 200 body for a stored answer."""
    return {
        "status": "ready",
        "answer": payload["answer"],
        "source": source,
        "quality": payload["quality"],
        "answer_id": payload["answer_id"],
        "matched_question": payload["matched_question"],
    }


def pending_body(job_id: str, fallback: str) -> dict:
    """Return the 202 body for a question being generated."""
    return {"status": "pending", "job_id": job_id, "answer": fallback, "source": "fallback",
            "poll": f"/v1/jobs/{job_id}"}


@bp.post("/v1/ask")
def ask():
    started = time.perf_counter()
    ctx = current_app.extensions["precache"]
    req = parse_ask(request, ctx.settings)
    normalized = normalize(req.question)
    if not normalized:
        raise ApiError(400, "invalid_field", "question: must contain at least one letter or digit")
    qhash = question_hash(normalized)
    status, body, stale = _ladder(ctx, req, normalized, qhash)
    seconds = time.perf_counter() - started
    metrics.observe_ask(body["source"], seconds, body.get("quality"), stale)
    _log_ask(ctx, req.question, qhash, body, seconds * 1000)
    if status == 503:
        return error_response(503, "queue_unavailable", body.pop("message"), **body)
    return jsonify(body), status


def _ladder(ctx, req, normalized: str, qhash: str) -> tuple[int, dict, bool]:
    """Return (HTTP status, body, whether the answer served is past its refresh time)."""
    hit = ctx.store.lookup(qhash)
    if hit is not None:
        expires = hit[0].get("expires_at")
        return 200, ready_body(hit[0], "exact"), bool(expires and expires < time.time())
    intent = match_intent(current_app.extensions["precache_intents"], normalized)
    if intent is not None:
        return 200, {"status": "ready", "answer": intent.answer, "source": "template", "quality": None,
                     "answer_id": None, "matched_question": None, "intent": intent.name}, False
    return (*_miss(ctx, req, normalized, qhash), False)


def _miss(ctx, req, normalized: str, qhash: str) -> tuple[int, dict]:
    fallback = ctx.settings.fallback_answer
    try:
        job_id, joined = ctx.jobs.enqueue(
            ctx.ns, qhash, lambda: ctx.store.ensure_question(req.question.strip(), normalized, qhash),
            request_id=request_id.get(),
        )
        (metrics.JOINS if joined else metrics.MISSES).inc()
        record = ctx.jobs.wait(job_id, req.wait_ms / 1000) if req.wait_ms else None
    except (redis.RedisError, OSError) as exc:
        log.warning("cannot enqueue a miss: %s", exc)
        return 503, {"message": "the generation queue is unavailable; the fallback answer is given",
                     "answer": fallback, "source": "fallback"}
    if record and record["status"] == READY:
        payload = ctx.store.answer_by_id(int(record["answer_id"]))
        if payload is not None:
            return 200, ready_body(payload, "generated") | {"job_id": job_id}
    return 202, pending_body(job_id, fallback)


def _log_ask(ctx, question: str, qhash: str, body: dict, latency_ms: float) -> None:
    entry = AskLog(question=question, qhash=qhash, namespace=ctx.settings.namespace, source=body["source"],
                   latency_ms=round(latency_ms, 3), answer_id=body.get("answer_id"), job_id=body.get("job_id"),
                   request_id=request_id.get())
    try:
        with ctx.sessions() as session:
            session.add(entry)
            session.commit()
    except Exception:  # the asker still gets the answer; the loss is logged
        log.exception("cannot write the ask log")
