"""POST /v1/ask: validate, climb the ladder within the deadline, log the ask."""

import logging
import time

import redis
from flask import Blueprint, current_app, jsonify, request

from precache import asklog, keys
from precache.logs import request_id
from precache.normalize import normalize, question_hash
from web import metrics
from web.errors import ApiError, error_response
from web.ladder import Ask, Outcome, climb, exact
from web.schemas import parse_ask

log = logging.getLogger(__name__)
bp = Blueprint("ask", __name__)
HOT_MISSED = "precache.hot_missed"  # environ key: web/fast.py read the hot cache for this ask, without a hit


def make_ask(question: str, wait_ms: int, detail: str = "quick") -> Ask:
    """Normalise a validated question into an Ask with its deadline."""
    normalized = normalize(question)
    if not normalized:
        raise ApiError(400, "invalid_field", "question: must contain at least one letter or digit")
    return Ask(question, normalized, question_hash(normalized), detail, time.monotonic() + wait_ms / 1000)


@bp.post("/v1/ask")
def ask():
    started = time.perf_counter()
    ctx = current_app.extensions["precache"]
    req = parse_ask(request, ctx.settings)
    ctx = ctx.for_tenant(req.tenant)
    item = make_ask(req.question, req.wait_ms, req.detail)
    item.hot_missed = bool(request.environ.get(HOT_MISSED))  # web/fast.py read the hot cache already
    outcome = answer(ctx, item, started)
    if outcome is None:
        return unavailable(ctx)
    return jsonify(outcome.body), outcome.status


def answer(ctx, item: Ask, started: float) -> Outcome | None:
    """Climb the ladder and log the ask; None when it is a miss that neither SQL nor Redis can keep."""
    hit = hot_hit(ctx, item, started)
    if hit is not None:
        return hit
    try:
        outcome = climb(ctx, item)
    except (redis.RedisError, OSError) as exc:
        log.warning("cannot record a miss anywhere: %s", exc)
        body = {"answer": ctx.settings.fallback_answer, "source": "fallback"}
        record(ctx, item, body, time.perf_counter() - started, stale=False)
        return None
    record(ctx, item, outcome.body, time.perf_counter() - started, outcome.stale)
    return outcome


def hot_hit(ctx, item: Ask, started: float) -> Outcome | None:
    """The exact hit from the hot cache, its ask logged in the same Redis round trip; None otherwise.

    Its logged latency is counted up to that round trip (what follows is building the response).
    """
    if item.detail != "quick" or ctx.settings.ask_log_flush_ms <= 0 or item.hot_missed:
        return None  # a detailed ask may be answered by another answer; unbatched, the log goes to SQL
    try:
        payload = ctx.ask_log.hit_and_push(keys.answer(ctx.ns, item.qhash), _exact_entry(ctx, item, started))
    except redis.RedisError as exc:  # the ladder reads SQL, and the ask goes to SQL
        log.warning("hot cache unavailable: %s", exc)
        return None
    if payload is None:
        item.hot_missed = True
        return None
    outcome = exact(ctx, item, payload)
    metrics.observe_ask("exact", time.perf_counter() - started, payload.get("quality"), outcome.stale)
    return outcome


def _exact_entry(ctx, item: Ask, started: float) -> dict:
    """The ask log's entry of an exact hit, as the writer pushes it."""
    return {"at": time.time(), "question": item.question, "qhash": item.qhash, "namespace": ctx.store.namespace,
            "source": "exact", "latency_ms": round((time.perf_counter() - started) * 1000, 3), "job_id": None,
            "request_id": request_id.get()}


def unavailable(ctx):
    """Return the 503 of a miss that cannot be kept, with the fallback answer."""
    return error_response(503, "queue_unavailable", "the generation queue is unavailable; the fallback answer is given",
                          answer=ctx.settings.fallback_answer, source="fallback")


def record(ctx, item: Ask, body: dict, seconds: float, stale: bool) -> None:
    """Count the ask in the metrics and log it (precache.asklog writes the log to SQL in batches)."""
    metrics.observe_ask(body["source"], seconds, body.get("quality"), stale)
    asklog.push(ctx, question=item.question, qhash=item.qhash, namespace=ctx.store.namespace,
                source=body["source"], latency_ms=round(seconds * 1000, 3), answer_id=body.get("answer_id"),
                job_id=body.get("job_id"), request_id=request_id.get())
