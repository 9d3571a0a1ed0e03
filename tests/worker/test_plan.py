"""Planning a batch (worker/plan.py): redelivered work, questions that crash the worker, gate counts."""

import pytest
from sqlalchemy import select

from precache import keys
from precache.config import load_settings
from precache.context import Context
from precache.models import Answer
from precache.normalize import normalize, question_hash
from precache.telemetry import _totals
from tests.worker.test_generation import ctx, enqueue, smollm2  # noqa: F401 - fixtures shared with test_generation
from worker.backends import Backend
from worker.generation import JobRequest, answer_questions
from worker.plan import Plan
from worker.work import AlreadyDone, Failed, Group, LeftForReview, NoQuestion

pytestmark = pytest.mark.model


def test_a_plan_tells_how_jobs_that_need_no_model_end_and_settles_none(ctx):
    job_id, question_id = enqueue(ctx, "What is an API?")
    plan = Plan()
    assert plan.add(ctx, 0, JobRequest(question_id + 1000, "no-such-job")) == NoQuestion(0, question_id + 1000)
    assert plan.add(ctx, 1, JobRequest(question_id, job_id)) is None  # for the model
    assert plan.add(ctx, 2, JobRequest(question_id, job_id)) is None  # the same question again: generated once
    assert [item.index for item in plan.groups[Group("quick")]] == [1]
    assert [item.index for item in plan.duplicates] == [2]
    # The worker died during as many generations of it as it may: given up, and left to the settle step.
    ctx.redis.hset(keys.generating(ctx.ns, question_hash(normalize("What is an API?"))), "started",
                   ctx.settings.generation_max_crashes)
    given_up = plan.add(ctx, 3, JobRequest(question_id, job_id))
    assert isinstance(given_up, Failed) and "died during 2 generations" in str(given_up.error)
    assert ctx.jobs.get(job_id)["status"] == "pending"
    ctx.jobs.finish(job_id, ctx.ns, question_hash(normalize("What is an API?")), error="failed elsewhere")
    done = plan.add(ctx, 4, JobRequest(question_id, job_id))
    assert isinstance(done, AlreadyDone) and done.job_finished and done.index == 4


def test_a_question_in_a_language_the_model_does_not_write_is_left_for_review(ctx, smollm2):
    """FAQ and predictive precompute queue any question: a Korean one never reaches a model that writes no Korean
    (SmolLM2 answers "배송은 얼마나 걸리나요?" with "배송은 어릭짐, 어릭짐, ..."), and is left for an admin."""
    job_id, question_id = enqueue(ctx, "배송은 얼마나 걸리나요?")
    outcome = Plan().add(ctx, 0, JobRequest(question_id, job_id))
    assert isinstance(outcome, LeftForReview) and "PRECACHE_LLM_LANGUAGES" in outcome.reason
    assert answer_questions(ctx, smollm2, [JobRequest(question_id, job_id)]) == [None]
    assert ctx.jobs.get(job_id)["status"] == "failed"
    with ctx.sessions() as session:
        assert session.scalars(select(Answer).where(Answer.question_id == question_id)).all() == []
    ctx.settings.llm_languages = "en,ko"  # a model that writes Korean: planned for it
    job_id, question_id = enqueue(ctx, "환불은 어떻게 받나요?")
    assert Plan().add(ctx, 0, JobRequest(question_id, job_id)) is None


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
