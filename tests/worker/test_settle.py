"""Settling a generation job (worker/settle.py): an endpoint away is retried later, then the job fails clearly."""

import json

import pytest
import redis as redis_lib

from precache.config import load_settings
from precache.context import Context
from precache.normalize import normalize, question_hash
from tests.integration.conftest import free_port
from tests.worker.test_generation import enqueue
from worker.backends import load_backend
from worker.generation import answer_question

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
