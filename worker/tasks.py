"""Celery tasks: thin wrappers over plain functions."""

from precache.precompute import queue_unanswered
from precache.queueing import GENERATION_TIME_LIMIT_S, HOUSEKEEPING_TIME_LIMIT_S
from worker import app, runtime
from worker.generation import answer_question


@app.task(acks_late=True, time_limit=GENERATION_TIME_LIMIT_S)
def generate_quick_answer(question_id: int, job_id: str) -> dict:
    """Generate and store the quick answer to a question."""
    answer = answer_question(runtime.context(), runtime.backend(), question_id, job_id, "quick",
                             worker=generate_quick_answer.request.hostname or "")
    return {"answer_id": answer["answer_id"]}


@app.task(acks_late=True, time_limit=HOUSEKEEPING_TIME_LIMIT_S)
def precompute_faq_answers() -> dict:
    """Queue generation for every FAQ question without an answer."""
    return {"queued": len(queue_unanswered(runtime.context()))}
