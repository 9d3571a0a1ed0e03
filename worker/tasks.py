"""Celery tasks: thin wrappers over plain functions."""

from precache import scheduled
from precache.embedder import shared_embedder
from precache.precompute import queue_unanswered
from precache.queueing import GENERATION_TIME_LIMIT_S, HOUSEKEEPING_TIME_LIMIT_S
from worker import app, runtime
from worker.generation import answer_question


def _run(task, question_id: int, job_id: str, kind: str, tenant: str) -> dict:
    ctx = runtime.context().for_tenant(tenant)
    answer = answer_question(ctx, runtime.backend(), question_id, job_id, kind, worker=task.request.hostname or "")
    return {"answer_id": answer["answer_id"] if answer else None}


@app.task(bind=True, acks_late=True, time_limit=GENERATION_TIME_LIMIT_S)
def generate_quick_answer(self, question_id: int, job_id: str, force: bool = False, regenerate: bool = False,
                          tenant: str = "") -> dict:
    """Generate and store the quick answer to a question (force: refresh one past its TTL; regenerate: one
    whose answers failed the quality gate, with the detailed settings)."""
    kind = "regenerate" if regenerate else "refresh" if force else "quick"
    return _run(self, question_id, job_id, kind, tenant)


@app.task(bind=True, acks_late=True, time_limit=GENERATION_TIME_LIMIT_S)
def generate_detailed_answer(self, question_id: int, job_id: str, tenant: str = "") -> dict:
    """Generate the detailed answer that replaces the quick one when its quality is as high."""
    return _run(self, question_id, job_id, "detailed", tenant)


def _scheduled(name: str, job) -> dict:
    """Run a scheduled job unless another copy of it is running (then report that and do nothing)."""
    ctx = runtime.context()
    with scheduled.exclusive(ctx, name, HOUSEKEEPING_TIME_LIMIT_S) as held:
        return job(ctx) if held else {"skipped": f"{name} is already running"}


@app.task(acks_late=True, time_limit=HOUSEKEEPING_TIME_LIMIT_S)
def precompute_faq_answers() -> dict:
    """Queue generation for every FAQ question without an answer (each tenant's too)."""
    return _scheduled("precompute", lambda ctx: scheduled._each_tenant(
        ctx, lambda tctx: {"queued": len(queue_unanswered(tctx))}))


@app.task(acks_late=True, time_limit=HOUSEKEEPING_TIME_LIMIT_S)
def predictive_precompute() -> dict:
    """Answer the most-missed clusters of paraphrased questions before the next asker."""
    return _scheduled("predictive", lambda ctx: scheduled.predictive_precompute(
        ctx, shared_embedder(ctx.settings.embedding_model, threads=None)))


@app.task(acks_late=True, time_limit=HOUSEKEEPING_TIME_LIMIT_S)
def refresh_stale_answers() -> dict:
    """Regenerate answers past their TTL."""
    return _scheduled("refresh", scheduled.refresh_stale)


@app.task(acks_late=True, time_limit=HOUSEKEEPING_TIME_LIMIT_S)
def regenerate_low_quality_answers() -> dict:
    """Regenerate answers that failed the quality gate (with the detailed settings, bounded tries)."""
    return _scheduled("regenerate", scheduled.regenerate_low_quality)


@app.task(acks_late=True, time_limit=HOUSEKEEPING_TIME_LIMIT_S)
def prune_ask_log() -> dict:
    """Delete ask-log rows past their retention."""
    return _scheduled("prune", scheduled.prune_ask_log)
