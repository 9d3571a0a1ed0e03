"""Celery tasks: thin wrappers over plain functions."""

from precache.precompute import queue_unanswered
from precache.queueing import GENERATION_TIME_LIMIT_S, HOUSEKEEPING_TIME_LIMIT_S
from worker import app, runtime
from worker.generation import answer_question


def _run(task, question_id: int, job_id: str, kind: str) -> dict:
    answer = answer_question(runtime.context(), runtime.backend(), question_id, job_id, kind,
                             worker=task.request.hostname or "")
    return {"answer_id": answer["answer_id"] if answer else None}


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
