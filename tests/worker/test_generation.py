"""Generation jobs, one at a time and in batches, with real backends, SQL and Redis.

The shared helpers live here: `enqueue` (a question and its job, as the web opens them) and the `ctx`
and `smollm2` fixtures, imported by the tests of plan, batch, settle and timeout.
"""

import pytest

from precache import keys
from precache.config import load_settings
from precache.context import Context
from precache.normalize import normalize, question_hash
from precache.telemetry import _totals
from worker.backends import load_backend
from worker.generation import JobRequest, answer_questions

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


def test_a_quick_job_that_arrives_mid_batch_joins_the_running_call(ctx, smollm2, monkeypatch):
    first = [enqueue(ctx, q) for q in ("What is an API?", "What is a compiler?")]
    late_job, late_question = enqueue(ctx, "What is a database?")
    offered = [[JobRequest(late_question, late_job)]]
    calls = []
    generate = smollm2.generate

    def counted(chats, *args, **kwargs):
        calls.append(len(chats))
        return generate(chats, *args, **kwargs)

    monkeypatch.setattr(smollm2, "generate", counted)
    outcomes = answer_questions(ctx, smollm2, [JobRequest(q, j) for j, q in first],
                                joiners=lambda room: offered.pop() if offered and room else [])
    assert calls == [2]  # one backend call: the late job joined it
    assert len(outcomes) == 3 and all(isinstance(o, dict) for o in outcomes)
    assert outcomes[2]["matched_question"] == "What is a database?"
    assert ctx.jobs.get(late_job)["status"] == "ready"
    assert ctx.redis.xlen(keys.tokens(late_job)) > 1  # its asker saw it streamed, as the others'
