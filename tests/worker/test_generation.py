"""Generation jobs, one at a time and in batches, with real backends, SQL and Redis."""

import json
import time

import pytest
import redis as redis_lib
from sqlalchemy import select

from precache import keys
from precache.config import load_settings
from precache.context import Context
from precache.models import Answer
from precache.normalize import normalize, question_hash
from precache.telemetry import _totals
from tests.integration.conftest import free_port
from worker.backends import Backend, BackendError, load_backend
from worker.generation import JobRequest, answer_question, answer_questions

pytestmark = pytest.mark.model


def enqueue(ctx, text: str, kind: str = "quick") -> tuple[str, int]:
    """Store a question and open its job as the web does; return (job id, question id)."""
    normalized = normalize(text)
    qhash = question_hash(normalized)
    job_id, _ = ctx.jobs.enqueue(ctx.ns, qhash, lambda: ctx.store.ensure_question(text, normalized, qhash),
                                 kind=kind)
    return job_id, int(ctx.jobs.get(job_id)["question_id"])


@pytest.fixture
def ctx(config):
    """A context whose detailed answers are short (the default is 512 tokens) and every answer is served.

    These tests are about batching and redelivery; which of a 135M model's answers cut at 24 tokens pass
    the quality gate depends on the exact text a llama.cpp build decodes, and the gate has tests of its
    own (tests/integration/test_quality_gate.py).
    """
    ctx = Context(load_settings(**config, llm_max_tokens_detailed=32, quality_threshold=0.0))
    yield ctx
    ctx.close()


@pytest.fixture(scope="module")
def smollm2():
    backend = load_backend(load_settings(llm_backend="llama_cpp", llm_context=1024, llm_threads=2))
    yield backend
    backend.close()


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


def test_a_batch_is_one_backend_call_per_level_and_each_job_gets_its_own_answer(ctx, smollm2):
    quick = [enqueue(ctx, q) for q in ("What is the capital of France?", "How do I reset my password?",
                                       "What is an API?")]
    detailed = [enqueue(ctx, "Why is the sky blue?", kind="detailed")]
    requests = [JobRequest(q, j, "detailed" if (j, q) in detailed else "quick") for j, q in [*detailed, *quick]]
    outcomes = answer_questions(ctx, smollm2, requests, worker="w1")
    assert all(isinstance(o, dict) for o in outcomes)
    assert len({o["answer_id"] for o in outcomes}) == 4
    assert [o["level"] for o in outcomes] == ["detailed", "quick", "quick", "quick"]
    for (job_id, _), outcome in zip([*detailed, *quick], outcomes):
        record = ctx.jobs.get(job_id)
        assert (record["status"], record["answer_id"]) == ("ready", str(outcome["answer_id"]))
    assert "Paris" in outcomes[1]["answer"]
    totals = _totals(ctx.redis)[("llama_cpp", "w1")]
    assert totals["batches"] == 2 and totals["count"] == 4  # the detailed batch, and one for the three quick
    assert int(ctx.redis.get(keys.generations("quick"))) == 3


def test_a_redelivered_job_in_a_batch_is_not_generated_again(ctx, smollm2):
    first = enqueue(ctx, "What is the capital of France?")
    [payload] = answer_questions(ctx, smollm2, [JobRequest(first[1], first[0])], worker="w1")
    second = enqueue(ctx, "What is an API?")
    outcomes = answer_questions(ctx, smollm2, [JobRequest(first[1], first[0]), JobRequest(second[1], second[0])],
                                worker="w1")
    assert outcomes[0]["answer_id"] == payload["answer_id"]
    assert _totals(ctx.redis)[("llama_cpp", "w1")]["count"] == 2  # one each, nothing twice


class WorkerDied(BaseException):
    """Stands for the process dying inside the model (a segfault): nothing after it runs."""


class DiesOn(Backend):
    """A real backend, except that the process dies whenever a batch holds the question `fatal`."""

    name = "llama_cpp"

    def __init__(self, inner: Backend, fatal: str):
        self.inner, self.fatal, self.batches = inner, fatal, []

    def load(self) -> None:
        pass

    def generate(self, chats, max_new_tokens, **sampling):
        questions = [chat[-1]["content"] for chat in chats]
        self.batches.append(questions)
        if self.fatal in questions:
            raise WorkerDied()
        return self.inner.generate(chats, max_new_tokens, **sampling)


def test_a_question_that_kills_the_worker_is_isolated_then_given_up(config, smollm2):
    ctx = Context(load_settings(**{**config, "llm_max_tokens_quick": 8, "quality_threshold": 0.0,
                                   "generation_max_crashes": 2}))
    fatal, others = "Does this question crash the model?", ["What is an API?", "What is the capital of France?"]
    backend = DiesOn(smollm2, fatal)
    try:
        jobs = [enqueue(ctx, q) for q in (fatal, *others)]
        requests = [JobRequest(question_id, job_id) for job_id, question_id in jobs]
        with pytest.raises(WorkerDied):  # one batch: the worker dies with all three
            answer_questions(ctx, backend, requests)
        assert backend.batches == [[fatal, *others]]
        assert [ctx.jobs.get(job_id)["status"] for job_id, _ in jobs] == ["pending"] * 3
        # The broker delivers the three again: each was in a batch the worker died during, so each is
        # generated alone, in order; the fatal one kills the worker again, alone this time.
        with pytest.raises(WorkerDied):
            answer_questions(ctx, backend, requests)
        assert backend.batches[1:] == [[fatal]]
        # Delivered a third time, it is given up without running the model on it again, and the two
        # others, which never began generating since, are each generated alone.
        outcomes = answer_questions(ctx, backend, requests)
        assert isinstance(outcomes[0], RuntimeError) and [type(o) for o in outcomes[1:]] == [dict, dict]
        assert backend.batches[2:] == [[others[0]], [others[1]]]
        statuses = [ctx.jobs.get(job_id)["status"] for job_id, _ in jobs]
        assert statuses == ["failed", "ready", "ready"]
        assert "died during 2 generations" in ctx.jobs.get(jobs[0][0])["error"]
        # Its next asker opens a new job, given up at once too; the other questions are generated as ever.
        again = enqueue(ctx, fatal)
        assert isinstance(answer_questions(ctx, backend, [JobRequest(again[1], again[0])])[0], RuntimeError)
        third = enqueue(ctx, "Why is the sky blue?")
        assert isinstance(answer_questions(ctx, backend, [JobRequest(third[1], third[0])])[0], dict)
        assert backend.batches[4:] == [["Why is the sky blue?"]]  # the fatal question never again
    finally:
        ctx.close()


@pytest.mark.parametrize("temperature", [0.7, 0.0])
def test_a_question_that_keeps_failing_the_gate_is_regenerated_by_sampling(config, smollm2, temperature):
    # Every answer fails a gate at 1.0: the quick answer, the greedy detailed one, then a third try.
    ctx = Context(load_settings(**{**config, "llm_max_tokens_quick": 32, "llm_max_tokens_detailed": 32,
                                   "quality_threshold": 1.0, "regenerate_temperature": temperature}))
    try:
        job_id, question_id = enqueue(ctx, "Why was my account suspended?")
        for kind in ("quick", "regenerate", "regenerate"):
            assert answer_questions(ctx, smollm2, [JobRequest(question_id, job_id, kind)]) == [None]
        assert ctx.jobs.get(job_id)["status"] == "failed"  # three failed answers: left for review
        with ctx.sessions() as session:
            texts = list(session.scalars(select(Answer.text).where(Answer.question_id == question_id)
                                         .order_by(Answer.id)))
        assert len(texts) == 3 and texts[0] != texts[1]  # quick, then the detailed prompt
        # Greedy decoding would give the detailed answer again; the third try samples another one.
        assert (texts[2] != texts[1]) == (temperature > 0)
    finally:
        ctx.close()


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

    ctx = Context(load_settings(**config, quality_threshold=0.0, generation_timeout_s=1))
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


def test_a_real_generation_asked_to_stop_stops_between_two_tokens_and_the_model_goes_on(smollm2):
    import threading

    from worker.backends import GenerationStopped, GenerationTimeout
    from worker.timeout import generate_within

    chat = [{"role": "user", "content": "Write a long story about a dragon."}]
    stop, pieces = threading.Event(), []

    def on_token(i, text):
        pieces.append(text)
        if len(pieces) == 3:
            stop.set()  # asked mid-generation, from another thread's point of view as generate_within does

    with pytest.raises(GenerationStopped):
        smollm2.generate([chat], 200, on_token=on_token, stop=stop)
    assert len(pieces) == 3  # not one token more
    with pytest.raises(GenerationTimeout) as timed_out:  # a tiny time limit: stopped cleanly, not stuck
        generate_within(smollm2, [chat], 2000, 1.0)
    assert timed_out.type is GenerationTimeout
    assert not [t for t in threading.enumerate() if t.name == "generation" and t.is_alive()]
    [again] = smollm2.generate([[{"role": "user", "content": "What is the capital of France?"}]], 16)
    assert "Paris" in again.text  # the same model answers as before


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
