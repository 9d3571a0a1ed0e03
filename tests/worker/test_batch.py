"""One backend call of a batch (worker/batch.py): slow batches split, the time budget, giving the model to askers."""

import json
import time

import pytest
import redis as redis_lib
from sqlalchemy import select

from precache import keys
from precache.config import load_settings
from precache.context import Context
from precache.models import Answer
from precache.telemetry import _totals
from tests.worker.test_generation import ctx, enqueue, smollm2  # noqa: F401 - fixtures shared with test_generation
from worker.backends import Backend, GenerationTimeout
from worker.batch import Call, Runner
from worker.generation import JobRequest, answer_questions
from worker.plan import Plan
from worker.work import Group, Preempted, Slow

pytestmark = pytest.mark.model


class SlowUntilStopped(Backend):
    """The real model, except that its first batch runs until it is asked to stop (a machine too busy to
    finish it in time) and stops there, between two tokens, as the real backends do."""

    name = "llama_cpp"

    def __init__(self, inner: Backend):
        self.inner, self.batches = inner, []

    def load(self) -> None:
        pass

    def generate(self, chats, max_new_tokens, stop=None, **sampling):
        self.batches.append(len(chats))
        if len(self.batches) == 1:
            stop.wait()
            from worker.backends import GenerationStopped

            raise GenerationStopped("stopped between two tokens, as asked")
        return self.inner.generate(chats, max_new_tokens, stop=stop, **sampling)


def test_a_batch_too_slow_for_its_time_is_generated_again_in_halves_not_failed(config, smollm2):
    import threading

    # 5 s, not less: a stopped generation may finish the token it is in, which takes seconds on a loaded machine
    # (a stop that takes longer than the generation's own time is a stuck model, failed: another test).
    ctx = Context(load_settings(**config, quality_threshold=0.0, generation_timeout_s=5))
    backend = SlowUntilStopped(smollm2)
    try:
        jobs = [enqueue(ctx, q) for q in ("What is an API?", "What is the capital of France?",
                                          "How do I reset my password?", "Why is the sky blue?")]
        outcomes = answer_questions(ctx, backend, [JobRequest(question_id, job_id) for job_id, question_id in jobs])
        # Stopped after its time, then two halves, each in time (or split further on a very busy machine).
        assert backend.batches[:2] == [4, 2] and sum(backend.batches[1:]) >= 4
        assert all(isinstance(o, dict) for o in outcomes), outcomes
        assert [ctx.jobs.get(job_id)["status"] for job_id, _ in jobs] == ["ready"] * 4
        # The stopped generation's thread ended: the model was never in use by two threads.
        assert not [t for t in threading.enumerate() if t.name == "generation" and t.is_alive()]
    finally:
        ctx.close()


class AlwaysSlow(Backend):
    """A machine too busy for any answer in time: each generation runs until asked to stop; records how long."""

    name = "llama_cpp"

    def __init__(self):
        self.waited = []

    def load(self) -> None:
        pass

    def generate(self, chats, max_new_tokens, stop=None, **sampling):
        from worker.backends import GenerationStopped

        started = time.monotonic()
        stop.wait()
        self.waited.append(time.monotonic() - started)
        raise GenerationStopped("stopped between two tokens, as asked")


def test_a_slow_answer_sent_again_keeps_the_longer_time_it_was_to_get(config):
    # Visibility 2 s: a second try with twice the 1 s would outlive the message, so the job is sent again
    # later, with the longer time (capped at 0.8 x the visibility timeout), not with the same 1 s again.
    ctx = Context(load_settings(**config, generation_timeout_s=1, broker_visibility_timeout_s=2))
    backend = AlwaysSlow()
    try:
        job_id, question_id = enqueue(ctx, "What is an API?")
        assert answer_questions(ctx, backend, [JobRequest(question_id, job_id)]) == [None]
        assert ctx.jobs.get(job_id)["status"] == "pending"  # a retry is queued: slow is not failed
        assert float(ctx.redis.hget(keys.job(job_id), "timeout_s")) == 1.6
        assert answer_questions(ctx, backend, [JobRequest(question_id, job_id)]) == [None]  # the retry
        assert len(backend.waited) == 2 and backend.waited[1] >= 1.55  # stopped at 1.6 s, not at 1 s
    finally:
        ctx.close()


def test_the_runner_yields_what_became_of_each_job_and_settles_nothing(config):
    ctx = Context(load_settings(**config, generation_timeout_s=1, broker_visibility_timeout_s=2))
    try:
        job_id, question_id = enqueue(ctx, "What is an API?")
        plan = Plan()
        plan.add(ctx, 0, JobRequest(question_id, job_id))
        [item] = plan.groups[Group("quick")]
        [slow] = Runner(ctx, AlwaysSlow()).generate([item], Call("quick"))
        # Stopped at 1 s; twice that would outlive the message: to be sent again later, with the 2 s it was to get.
        assert slow == Slow(item, slow.error, 2.0) and isinstance(slow.error, GenerationTimeout)
        assert list(Runner(ctx, AlwaysSlow()).generate([item], Call("detailed", preempt=lambda: True))) == [
            Preempted(item)]
        # Neither retried nor sent back: the caller settles.
        assert ctx.jobs.get(job_id)["status"] == "pending" and not ctx.redis.hexists(keys.job(job_id), "retries")
        assert redis_lib.Redis.from_url(config["broker_url"]).llen("detailed") == 0
    finally:
        ctx.close()


def test_a_detailed_answer_gives_the_model_to_waiting_askers_mid_answer(config, smollm2):
    ctx = Context(load_settings(**config, llm_max_tokens_detailed=400, quality_threshold=0.0))
    try:
        jobs = [enqueue(ctx, q, kind="detailed") for q in ("Write a long story about a dragon.",
                                                           "Write a long story about a castle.")]
        asked = []

        def askers_waiting():  # nobody when the batch starts; an asker's question arrives during the first answer
            asked.append(len(asked))
            return len(asked) > 1

        outcomes = answer_questions(ctx, smollm2, [JobRequest(q, j, "detailed") for j, q in jobs], worker="w1",
                                    askers_waiting=askers_waiting)
        assert outcomes == [None, None] and len(asked) >= 2
        assert [ctx.jobs.get(job_id)["status"] for job_id, _ in jobs] == ["pending", "pending"]
        with ctx.sessions() as session:  # stopped between two tokens: nothing stored, nothing half-written
            assert session.scalar(select(Answer.id).limit(1)) is None
        queued = [json.loads(m)["headers"]["argsrepr"] for m in
                  redis_lib.Redis.from_url(config["broker_url"]).lrange("detailed", 0, -1)]
        for job_id, _ in jobs:  # each sent back to the detailed queue, behind askers' work
            assert sum(job_id in args for args in queued) == 2  # its first message, and the one sent back
        # The model goes on: the next generation on it is whole.
        [again] = smollm2.generate([[{"role": "user", "content": "What is the capital of France?"}]], 16)
        assert "Paris" in again.text
    finally:
        ctx.close()


def test_detailed_answers_wait_when_askers_are_waiting_before_they_start(ctx, smollm2, config):
    jobs = [enqueue(ctx, q, kind="detailed") for q in ("Why is the sky blue?", "What is an API?")]
    outcomes = answer_questions(ctx, smollm2, [JobRequest(q, j, "detailed") for j, q in jobs], worker="w1",
                                askers_waiting=lambda: True)
    assert outcomes == [None, None] and ("llama_cpp", "w1") not in _totals(ctx.redis)  # the model never ran
    assert [ctx.jobs.get(job_id)["status"] for job_id, _ in jobs] == ["pending", "pending"]
