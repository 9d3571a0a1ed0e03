"""Celery tasks: thin wrappers over plain functions."""

import logging

from precache.precompute import queue_unanswered
from precache.queueing import GENERATION_TIME_LIMIT_S, HOUSEKEEPING_TIME_LIMIT_S
from precache.recovery import sweep
from worker import app, runtime
from worker.backends import GenerationTimeout
from worker.generation import TRANSIENT_ERRORS, answer_question

log = logging.getLogger(__name__)


def _run(task, question_id: int, job_id: str, kind: str) -> dict:
    ctx = runtime.context()
    try:
        answer = answer_question(ctx, runtime.backend(), question_id, job_id, kind,
                                 worker=task.request.hostname or "")
    except GenerationTimeout:
        runtime.discard_backend()  # its thread may still run: the next task gets a fresh model
        raise
    except TRANSIENT_ERRORS as exc:
        _retry_or_fail(task, ctx, job_id, exc)
    return {"answer_id": answer["answer_id"] if answer else None}


def _retry_or_fail(task, ctx, job_id: str, exc: Exception):
    """Retry after a transient error with a doubling delay; past the bound, fail the job."""
    settings, attempt = ctx.settings, task.request.retries
    if attempt < settings.generation_max_retries:
        delay = min(60.0, settings.generation_retry_backoff_s * 2 ** attempt)
        log.warning("transient error, retry %d of %d in %.1f s: %s", attempt + 1,
                    settings.generation_max_retries, delay, exc)
        raise task.retry(exc=exc, countdown=delay, max_retries=settings.generation_max_retries)
    record = ctx.jobs.get(job_id)
    if record is not None:
        ctx.jobs.finish(job_id, ctx.ns, record["qhash"], error=f"gave up after {attempt} retries: {exc}")
    raise exc


@app.task(bind=True, acks_late=True, time_limit=GENERATION_TIME_LIMIT_S)
def generate_quick_answer(self, question_id: int, job_id: str, force: bool = False) -> dict:
    """Generate and store the quick answer to a question (force: refresh one past its TTL)."""
    return _run(self, question_id, job_id, "refresh" if force else "quick")


@app.task(bind=True, acks_late=True, time_limit=GENERATION_TIME_LIMIT_S)
def generate_detailed_answer(self, question_id: int, job_id: str) -> dict:
    """Generate the detailed answer that replaces the quick one when its quality is as high."""
    return _run(self, question_id, job_id, "detailed")


@app.task(acks_late=True, time_limit=HOUSEKEEPING_TIME_LIMIT_S)
def precompute_faq_answers() -> dict:
    """Queue generation for every FAQ question without an answer."""
    return {"queued": len(queue_unanswered(runtime.context()))}


@app.task(acks_late=True, time_limit=HOUSEKEEPING_TIME_LIMIT_S)
def sweep_lost_asks() -> dict:
    """Write asks kept in Redis during a database outage to SQL; queue unanswered questions without a job."""
    return sweep(runtime.context())
