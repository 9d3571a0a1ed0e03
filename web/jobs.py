"""GET /v1/jobs/<job_id>?tenant=: the state of a generation job, seen only from its own tenant."""

import logging

import redis
from flask import Blueprint, current_app, jsonify, request
from sqlalchemy.exc import SQLAlchemyError

from precache.context import AppContext
from precache.jobs import FAILED, PENDING, READY
from precache.localized import fallback_in
from web.ladder import ready_body
from web.errors import ApiError
from web.schemas import check_tenant

log = logging.getLogger(__name__)
bp = Blueprint("jobs", __name__)
WITHDRAWN = "the answer is no longer served (invalidated or below the quality threshold); ask again"


@bp.get("/v1/jobs/<job_id>")
def job(job_id: str):
    ctx = current_app.extensions["precache"].for_tenant(check_tenant(request.args.get("tenant")))
    try:
        return _job(ctx, job_id)
    except (redis.RedisError, SQLAlchemyError) as exc:  # state unknown for now: the fallback, poll again
        log.warning("cannot read job %s: %s", job_id[:64], exc)
        return jsonify({"status": PENDING, "job_id": job_id[:64], "answer": ctx.settings.fallback_answer,
                        "source": "fallback"})


def _job(ctx: AppContext, job_id: str):
    record = ctx.jobs.get(job_id) if len(job_id) <= 64 else None
    # Another tenant's job, or a reply (no tenant, no answer), reads as no job: ids cannot be probed.
    if record is None or record.get("tenant") != ctx.tenant:
        raise ApiError(404, "job_not_found",
                       f"no job {job_id[:64]!r}; use the job_id from POST /v1/ask, with its tenant (jobs expire "
                       f"after {ctx.settings.job_ttl_s} s)")
    body = {"status": record["status"], "job_id": job_id, "answer": fallback_in(ctx.settings, record.get("lang", "")),
            "source": "fallback"}
    if record["status"] == READY:
        answer_id = int(record["answer_id"])
        payload = ctx.store.answer_by_id(answer_id) if ctx.store.servable_answer(answer_id) else None
        if payload is not None:
            return jsonify(ready_body(payload, "generated") | {"job_id": job_id})
        body |= {"status": FAILED, "error": WITHDRAWN}  # done, and nothing to wait for: the asker asks again
    if record["status"] == FAILED:
        body["error"] = record.get("error", "generation failed")
    return jsonify(body)
