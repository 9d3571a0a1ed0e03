"""Settling a generation job (worker/settle.py): each outcome acted on as it says; an endpoint away is retried
later, then the job fails clearly."""

import json

import pytest
import redis as redis_lib

from precache import keys
from precache.config import load_settings
from precache.context import Context
from precache.models import Question
from precache.normalize import normalize, question_hash
from tests.integration.conftest import free_port
from tests.worker.test_generation import enqueue
from worker.backends import BackendUnavailable, GenerationTimeout, load_backend
from worker.generation import JobRequest, answer_question
from worker.settle import settle
from worker.work import AlreadyDone, Failed, Item, LeftForReview, NoQuestion, Slow

pytestmark = pytest.mark.model


def test_server_down_is_retried_later_then_fails_the_job_clearly_and_caches_nothing(config):
    url = f"http://127.0.0.1:{free_port()}/v1"
    ctx = Context(load_settings(**config, llm_backend="openai", llm_base_url=url, llm_max_retries=0,
                                generation_max_retries=1))
    try:
        backend = load_backend(ctx.settings)
        job_id, question_id = enqueue(ctx, "How do I reset my password?")
        assert answer_question(ctx, backend, question_id, job_id) is None  # an endpoint restarting: try again
        assert ctx.jobs.get(job_id)["status"] == "pending"
        again = [json.loads(m) for m in redis_lib.Redis.from_url(config["broker_url"]).lrange("quick", 0, -1)]
        retry = [m["headers"] for m in again if job_id in m["headers"]["argsrepr"] and m["headers"]["eta"]]
        assert len(retry) == 1 and retry[0]["task"] == "worker.tasks.generate_quick_answer"
        with pytest.raises(RuntimeError, match="gave up after 1 retries: .*failed after 1 tries: ConnectError"):
            answer_question(ctx, backend, question_id, job_id)
        record = ctx.jobs.get(job_id)
        assert record["status"] == "failed" and url in record["error"]
        assert ctx.store.lookup(question_hash(normalize("How do I reset my password?"))) is None
        assert not ctx.store.has_answer(question_id)
    finally:
        ctx.close()


def _item(ctx, text: str) -> Item:
    """Open a job for a question as the web does; return it planned for the model."""
    job_id, question_id = enqueue(ctx, text)
    with ctx.sessions() as session:
        return Item(0, JobRequest(question_id, job_id), session.get(Question, question_id), ctx)


def test_each_outcome_is_settled_as_it_says(config):
    ctx = Context(load_settings(**config, generation_timeout_s=1, broker_visibility_timeout_s=10,
                                generation_max_retries=3))
    try:
        item = _item(ctx, "What is an API?")
        job_id = item.request.job_id
        assert isinstance(settle(NoQuestion(0, 404), backend=None), ValueError)
        assert settle(Slow(item, GenerationTimeout("slow"), 2.0), backend=None) is None
        assert ctx.jobs.get(job_id)["status"] == "pending"  # sent again later, with the longer time
        assert float(ctx.redis.hget(keys.job(job_id), "timeout_s")) == 2.0
        assert settle(Failed(item, BackendUnavailable("busy")), backend=None) is None  # transient: sent again
        assert (ctx.jobs.get(job_id)["status"], int(ctx.redis.hget(keys.job(job_id), "retries"))) == ("pending", 2)
        error = RuntimeError("broken")
        assert settle(Failed(item, error), backend=None) is error
        assert ctx.jobs.get(job_id)["error"] == "RuntimeError: broken"
        # A job already finished keeps its outcome; nothing is served for it.
        assert settle(AlreadyDone(item, job_finished=True), backend=None) is None
        assert ctx.jobs.get(job_id)["error"] == "RuntimeError: broken"
        other = _item(ctx, "Why is the sky blue?")
        assert settle(LeftForReview(other, "3 answers failed the quality gate"), backend=None) is None
        record = ctx.jobs.get(other.request.job_id)
        assert (record["status"], record["error"]) == ("failed", "3 answers failed the quality gate")
    finally:
        ctx.close()
