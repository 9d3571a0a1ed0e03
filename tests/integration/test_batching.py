"""Batched generation in a real worker process: fewer backend calls than answers, priorities, no loss on a kill."""

import os
import signal

import pytest
import redis as redis_lib
from sqlalchemy import create_engine, select

from precache.config import load_settings
from precache.context import Context
from precache.models import Answer
from precache.telemetry import _totals
from tests.conftest import BROKER_URL
from tests.integration.conftest import stack_env, start, stop, wait_for
from tests.worker.test_generation import enqueue

pytestmark = pytest.mark.integration

QUESTIONS = ["What is the capital of France?", "How do I reset my password?", "What is an API?",
             "How do I cancel my order?", "Where is my parcel?", "Can I change my email address?"]


@pytest.fixture
def stack(database_url, tmp_path):
    """Environment of a worker with batches of 4, and a context on the same Redis and database. Time limits are
    the shipped ones: on a busy machine a short one would split the batches these tests look at."""
    redis_lib.Redis.from_url(BROKER_URL).flushdb()
    env = stack_env(database_url, tmp_path / "var", llm_max_batch=4, llm_batch_wait_ms=500)
    settings = {k[len("PRECACHE_"):].lower(): v for k, v in env.items() if k.startswith("PRECACHE_")}
    ctx = Context(load_settings(**settings))
    ctx.redis.flushdb()
    yield env, ctx
    ctx.close()


def _answers(database_url: str) -> list[tuple[int, str, float]]:
    engine = create_engine(database_url)
    with engine.connect() as conn:
        rows = conn.execute(select(Answer.question_id, Answer.level, Answer.id).order_by(Answer.id)).all()
    engine.dispose()
    return [tuple(row) for row in rows]


def _all_ready(ctx, jobs) -> bool:
    return all(ctx.jobs.get(job_id)["status"] == "ready" for job_id, _ in jobs)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_waiting_misses_are_generated_in_batches_quick_first(stack, tmp_path):
    env, ctx = stack
    detailed = [enqueue(ctx, "Why is the sky blue?", kind="detailed")]
    quick = [enqueue(ctx, question) for question in QUESTIONS]
    log = tmp_path / "worker.log"
    proc = start(["worker"], env, log)
    try:
        wait_for(lambda: _all_ready(ctx, quick + detailed), proc, log, timeout=300)
    finally:
        stop(proc)
    answers = _answers(env["PRECACHE_DATABASE_URL"])
    quick_ids = {question_id for _, question_id in quick}
    assert {q for q, level, _ in answers if level == "quick"} == quick_ids  # every miss answered, once
    assert len([a for a in answers if a[1] == "quick"]) == len(QUESTIONS)
    [(batches, generations)] = [(t.get("batches", 0), t["count"]) for t in _totals(ctx.redis).values()]
    assert len(answers) <= generations and batches < generations
    assert "generating a quick batch of 4" in log.read_text()  # LLM_MAX_BATCH; the rest may join it (LLM_JOIN_ROOM)
    assert "Traceback" not in log.read_text()  # the batch task and its per-job Flower events ran cleanly
    # The detailed job was queued first, but the waiting quick ones were generated before it.
    first_detailed = min(i for q, level, i in answers if level == "detailed")
    assert max(i for q, level, i in answers if q in quick_ids and level == "quick") < first_detailed


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_worker_killed_mid_batch_loses_no_request(stack, tmp_path):
    env, ctx = stack
    env["PRECACHE_LLM_MAX_TOKENS_QUICK"] = "160"  # a batch long enough to be killed in
    jobs = [enqueue(ctx, question) for question in QUESTIONS[:4]]
    first_log = tmp_path / "first.log"
    first = start(["worker"], env, first_log)
    try:
        wait_for(lambda: "generating a quick batch of 4" in first_log.read_text(), first, first_log)
        os.kill(first.pid, signal.SIGKILL)  # `precache worker` execs celery: this is the worker itself
        first.wait(timeout=30)
    finally:
        stop(first)
    assert not any(ctx.jobs.get(job_id)["status"] == "ready" for job_id, _ in jobs)
    second_log = tmp_path / "second.log"
    second = start(["worker"], env, second_log)
    try:  # the first worker's jobs are sent again once its alive key expires (30 s), long before the broker would
        wait_for(lambda: _all_ready(ctx, jobs), second, second_log, timeout=300)
        assert "is gone: sent again the 4 pending jobs" in second_log.read_text()
    finally:
        stop(second)
    answers = _answers(env["PRECACHE_DATABASE_URL"])
    assert sorted(q for q, level, _ in answers if level == "quick") == sorted(q for _, q in jobs)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_an_askers_question_does_not_wait_for_a_detailed_answer_being_generated(stack, tmp_path):
    env, ctx = stack
    env["PRECACHE_LLM_MAX_TOKENS_DETAILED"] = "300"  # long enough to be interrupted
    log = tmp_path / "worker.log"
    proc = start(["worker"], env, log)
    try:
        wait_for(lambda: "ready." in log.read_text(), proc, log)
        [detailed] = [enqueue(ctx, "Write a long story about a dragon and a castle.", kind="detailed")]
        wait_for(lambda: "generating a detailed batch of 1" in log.read_text(), proc, log)
        quick = enqueue(ctx, "What is the capital of France?")
        wait_for(lambda: ctx.jobs.get(quick[0])["status"] == "ready", proc, log, timeout=300)
        # The asker's answer came first: the detailed generation gave way and went back to its queue.
        assert ctx.jobs.get(detailed[0])["status"] == "pending"
        assert "background answers sent back to their queue" in log.read_text()
        wait_for(lambda: ctx.jobs.get(detailed[0])["status"] == "ready", proc, log, timeout=300)  # then it is done
    finally:
        stop(proc)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_question_that_arrives_mid_batch_joins_it_and_every_job_is_answered_once(stack, tmp_path):
    env, ctx = stack
    env["PRECACHE_LLM_MAX_TOKENS_QUICK"] = "300"  # a batch long enough to arrive in
    log = tmp_path / "worker.log"
    proc = start(["worker"], env, log)
    try:
        wait_for(lambda: "ready." in log.read_text(), proc, log)
        first = [enqueue(ctx, question) for question in ("Write a long story about a dragon.",
                                                         "Write a long poem about the sea.")]
        wait_for(lambda: "generating a quick batch of 2" in log.read_text(), proc, log)
        late = [enqueue(ctx, "What is an API?")]
        wait_for(lambda: _all_ready(ctx, first + late), proc, log, timeout=300)
    finally:
        stop(proc)
    text = log.read_text()
    assert "1 quick jobs joined the running batch" in text, text[-3000:]
    assert "generating a quick batch of 1" not in text  # the late one was not a batch of its own
    assert "Traceback" not in text
    answers = _answers(env["PRECACHE_DATABASE_URL"])
    assert sorted(q for q, level, _ in answers if level == "quick") == sorted(q for _, q in first + late)
