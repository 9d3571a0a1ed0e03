"""Feedback from askers (precache/feedback.py): recorded, a helpful answer's phrasing learned, retracted by the
next asker it does not fit, listed and unlearned per tenant; SQL and Redis are real."""

from types import SimpleNamespace

import pytest

from precache import feedback, keys
from precache.config import load_settings
from precache.context import Context
from precache.normalize import normalize, question_hash
from tests.conftest import store_question

FAQ = "How do I reset my password?"
ANSWER = "Open Settings, choose Security, then Reset password."
PHRASING = "I forgot my password, what now?"


def ask_of(text: str) -> SimpleNamespace:
    """An ask as the web hands it to `record`: the question, normalized, and its hash."""
    normalized = normalize(text)
    return SimpleNamespace(question=text, normalized=normalized, qhash=question_hash(normalized))


@pytest.fixture
def answer(ctx) -> dict:
    question_id, _ = store_question(ctx, FAQ)
    return ctx.store.save_answer(question_id, ANSWER, curated=True, quality=1.0)


def test_a_helpful_answer_teaches_its_phrasing_and_the_next_asker_of_it_is_served(ctx, answer):
    ask = ask_of(PHRASING)
    assert ctx.store.lookup(ask.qhash) is None
    done = feedback.record(ctx, ask, None, answer, True, {answer["answer_id"]: 0.91}, "asker-1")
    assert done == {"recorded": True, "learned": True, "retracted": 0}
    served, _ = ctx.store.lookup(ask.qhash)
    assert served["answer"] == ANSWER
    [link] = feedback.learned(ctx)
    assert (link["phrasing"], link["answer_id"], link["taught_by"], link["retracted_at"]) == \
        (PHRASING, answer["answer_id"], "asker-1", None)
    again = feedback.record(ctx, ask, None, answer, True, {answer["answer_id"]: 0.91}, "asker-3")
    assert again["learned"] is False and len(feedback.learned(ctx)) == 1  # learned once


def test_another_askers_does_not_fit_retracts_the_phrasing_at_once(ctx, answer):
    ask = ask_of(PHRASING)
    feedback.record(ctx, ask, None, answer, True, {answer["answer_id"]: 0.91}, "asker-1")
    done = feedback.record(ctx, ask, None, answer, False, {answer["answer_id"]: 0.91}, "asker-2")
    assert done == {"recorded": True, "learned": False, "retracted": 1}
    assert ctx.store.lookup(ask.qhash) is None
    assert feedback.learned(ctx)[0]["retracted_by"] == "asker-2"


def test_the_answers_own_question_teaches_nothing(ctx, answer):
    done = feedback.record(ctx, ask_of(FAQ), None, answer, True, {answer["answer_id"]: 1.0}, "asker-1")
    assert done["learned"] is False and feedback.learned(ctx) == []


def test_an_admin_unlearns_a_phrasing_and_each_tenant_sees_its_own(ctx, answer):
    ask = ask_of(PHRASING)
    feedback.record(ctx, ask, None, answer, True, {answer["answer_id"]: 0.91}, "asker-1")
    [link] = feedback.learned(ctx, tenant="")
    assert feedback.learned(ctx, tenant="acme") == []
    view = feedback.unlearn(ctx, link["id"], by="admin-1")
    assert view["retracted_by"] == "admin-1" and ctx.store.lookup(ask.qhash) is None
    assert feedback.unlearn(ctx, link["id"] + 1000) is None


def test_with_learning_off_feedback_is_recorded_and_nothing_is_linked(config, answer):
    quiet = Context(load_settings(**config, learn=False))
    try:
        before = int(quiet.redis.get(keys.feedback_version()) or 0)
        done = feedback.record(quiet, ask_of(PHRASING), None, answer, True, {answer["answer_id"]: 0.91}, "asker-1")
        assert done == {"recorded": True, "learned": False, "retracted": 0}
        assert feedback.learned(quiet) == []
        assert int(quiet.redis.get(keys.feedback_version())) == before + 1  # web processes load the new row
    finally:
        quiet.close()
