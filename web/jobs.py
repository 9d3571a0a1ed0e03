"""GET /v1/jobs/<job_id>: the state of a generation job."""

import logging

import redis
from flask import Blueprint, current_app, jsonify
from sqlalchemy.exc import SQLAlchemyError

from precache.context import AppContext
from precache.jobs import FAILED, PENDING, READY
from web.ladder import ready_body
from web.errors import ApiError

log = logging.getLogger(__name__)
bp = Blueprint("jobs", __name__)


@bp.get("/v1/jobs/<job_id>")
def job(job_id: str):
    ctx = current_app.extensions["precache"]
    try:
        return _job(ctx, job_id)
    except (redis.RedisError, SQLAlchemyError) as exc:  # state unknown for now: the fallback, poll again
        log.warning("cannot read job %s: %s", job_id[:64], exc)
        return jsonify({"status": PENDING, "job_id": job_id[:64], "answer": ctx.settings.fallback_answer,
                        "source": "fallback"})


def _job(ctx: AppContext, job_id: str):
    record = ctx.jobs.get(job_id) if len(job_id) <= 64 else None
    if record is None:
        raise ApiError(404, "job_not_found",
                       f"no job {job_id[:64]!r}; use the job_id from POST /v1/ask (jobs expire after "
                       f"{ctx.settings.job_ttl_s} s)")
    if record["status"] == READY:
        payload = ctx.store.answer_by_id(int(record["answer_id"]))
        if payload is not None:
            return jsonify(ready_body(payload, "generated") | {"job_id": job_id})
    body = {"status": record["status"], "job_id": job_id, "answer": ctx.settings.fallback_answer,
            "source": "fallback"}
    if record["status"] == FAILED:
        body["error"] = record.get("error", "generation failed")
    return jsonify(body)
