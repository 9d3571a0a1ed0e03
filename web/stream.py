"""GET /v1/ask/stream: Server-Sent Events — the instant answer or a pending notice, then (for a miss)
`token` events with the quick answer's text as the worker generates it, then the quick answer, then
the detailed one, then `done`."""

import json
import logging
import time

from flask import Blueprint, Response, current_app, jsonify, request, stream_with_context
from sqlalchemy.exc import SQLAlchemyError

from precache.context import AppContext
from precache.jobs import PENDING, READY
from web import caps, identity
from web.errors import ApiError
from web.ladder import QUEUE_ERRORS, ready_body
from web.live import KEEP_ALIVE, live_text
from web.schemas import check_question, check_tenant

log = logging.getLogger(__name__)
bp = Blueprint("stream", __name__)


def sse(event: str, data: dict) -> str:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n"


@bp.get("/v1/ask/stream")
def stream():
    started = time.perf_counter()
    ladder = current_app.extensions["precache_ladder"]
    question = request.args.get("question")
    if question is None:
        raise ApiError(400, "invalid_field", "question: required as a query parameter (?question=...)")
    check_question(question, ladder.settings.max_question_chars)
    item = ladder.ask(question, tenant=check_tenant(request.args.get("tenant")), started=started,
                      asker=identity.asker(request, ladder.settings))
    with caps.stream_open(ladder.context.redis, item.asker, ladder.settings.streams_per_client,
                          ladder.settings.stream_max_s) as hand_over:
        outcome = ladder.answer(item)
        if outcome.status >= 500:
            return jsonify(outcome.body), outcome.status
        deadline = time.monotonic() + ladder.settings.stream_max_s
        events = _follow(ladder.for_tenant(item.tenant), item.qhash, outcome.body, deadline)
        return hand_over(Response(stream_with_context(events), mimetype="text/event-stream",
                                  headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}))


def _follow(ctx: AppContext, qhash: str, body: dict, deadline: float):
    """Yield the first event, then each better answer as it lands, then `done`."""
    yield sse("answer" if body["status"] == "ready" else "pending", body)
    try:
        yield from _better(ctx, qhash, body, deadline)
    except (*QUEUE_ERRORS, SQLAlchemyError) as exc:  # the status line is sent: end the stream, saying why
        log.warning("stream ended early, Redis or the database is unavailable: %s", exc)
        poll = f"; poll {body['poll']}" if body.get("poll") else ""
        yield sse("done", {"reason": "Redis or the database became unavailable" + poll})


def _better(ctx: AppContext, qhash: str, body: dict, deadline: float):
    """Yield the quick and the detailed answer as each lands, then `done`."""
    if body["source"] == "template":
        yield sse("done", {})
        return
    if body.get("reason") == "language":
        yield sse("done", {"reason": "the model does not answer in this language; the question is kept for an admin"})
        return
    if body.get("queued") is False:
        yield sse("done", {"reason": "the queue is unavailable; the question is kept and answered later"})
        return
    if body["status"] == "pending":
        body = yield from _quick(ctx, body, deadline)
        if body is None:
            return
    if body.get("level") == "quick" and not body.get("curated"):
        yield from _detailed(ctx, qhash, deadline)
    yield sse("done", {})


def _quick(ctx: AppContext, pending: dict, deadline: float):
    """Yield the quick answer's tokens, then the answer (and return its body), or `done` (and return None)."""
    job_id = pending["job_id"]
    for piece in live_text(ctx, job_id, deadline, ctx.settings.stream_heartbeat_s):
        yield sse("token", {"job_id": job_id, "text": piece}) if piece else KEEP_ALIVE
    quick = yield from _wait(ctx, job_id, deadline)
    if quick is None:
        yield sse("done", {"reason": "the quick answer was not ready in time; poll " + pending["poll"]})
        return None
    yield sse("quick", ready_body(quick, "generated", job_id=job_id))
    return quick


def _detailed(ctx: AppContext, qhash: str, deadline: float):
    """Yield the detailed answer if it lands by `deadline`."""
    job_id = ctx.jobs.pending_job(ctx.ns, qhash, "detailed")
    detailed = (yield from _wait(ctx, job_id, deadline)) if job_id else None
    if detailed is not None and detailed["level"] == "detailed":
        yield sse("detailed", ready_body(detailed, "generated", job_id=job_id))


def _wait(ctx: AppContext, job_id: str, deadline: float):
    """Wait for the job's answer (and return it; None if there is none by `deadline`), yielding a keep-alive
    comment every STREAM_HEARTBEAT_S meanwhile."""
    while True:
        left = deadline - time.monotonic()
        record_ = ctx.jobs.wait(job_id, max(0.0, min(left, ctx.settings.stream_heartbeat_s)))
        if record_ is None or record_["status"] != PENDING or left <= ctx.settings.stream_heartbeat_s:
            break
        yield KEEP_ALIVE
    if record_ and record_["status"] == READY and record_.get("answer_id"):
        return ctx.store.answer_by_id(int(record_["answer_id"]))
    return None
