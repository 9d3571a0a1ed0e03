"""Feedback from askers (precache/feedback.py): recorded, a helpful answer's phrasing proposed by one asker and
learned once a second confirms it, never over a curated answer, retracted by the next asker it does not fit,
listed, confirmed and unlearned per tenant; SQL and Redis are real."""

from types import SimpleNamespace

import numpy as np
import pytest

from precache import feedback, keys
from precache.config import load_settings
from precache.context import Context
from precache.models import Question
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


def test_a_helpful_answer_is_proposed_by_one_asker_and_served_once_another_confirms_it(ctx, answer):
    ask = ask_of(PHRASING)
    assert ctx.store.lookup(ask.qhash) is None
    done = feedback.record(ctx, ask, None, answer, True, {answer["answer_id"]: 0.91}, "asker-1")
    assert done == {"recorded": True, "learned": False, "proposed": True, "retracted": 0}
    assert ctx.store.lookup(ask.qhash) is None  # one asker's word serves nobody else yet
    again = feedback.record(ctx, ask, None, answer, True, {answer["answer_id"]: 0.91}, "asker-1")
    assert again["learned"] is False and again["proposed"] is False  # the same asker counts once
    assert ctx.store.lookup(ask.qhash) is None
    second = feedback.record(ctx, ask, None, answer, True, {answer["answer_id"]: 0.91}, "asker-2")
    assert second == {"recorded": True, "learned": True, "proposed": False, "retracted": 0}
    served, _ = ctx.store.lookup(ask.qhash)
    assert served["answer"] == ANSWER
    links = feedback.learned(ctx)
    assert [(link["phrasing"], link["answer_id"], link["taught_by"], link["retracted_at"]) for link in links] == [
        (PHRASING, answer["answer_id"], "asker-2", None), (PHRASING, answer["answer_id"], "asker-1", None)]
    assert all(link["confirmed_at"] for link in links)
    third = feedback.record(ctx, ask, None, answer, True, {answer["answer_id"]: 0.91}, "asker-3")
    assert third["learned"] is False  # served already


def test_only_a_confirmed_phrasing_joins_the_semantic_index(ctx, answer):
    from sqlalchemy import select

    from precache.models import QuestionEmbedding

    def embedded() -> bool:
        with ctx.sessions() as session:
            return session.scalar(select(QuestionEmbedding.id).join(
                Question, Question.id == QuestionEmbedding.question_id).where(Question.text == PHRASING)) is not None

    vector = np.array([0.6, 0.8], dtype=np.float32)
    feedback.record(ctx, ask_of(PHRASING), vector, answer, True, {answer["answer_id"]: 0.91}, "asker-1")
    assert not embedded()  # proposed: grouped with no answer, it would be every nearby answer's rival
    feedback.record(ctx, ask_of(PHRASING), vector, answer, True, {answer["answer_id"]: 0.91}, "asker-2")
    assert embedded()


def _confirmed(ctx, ask, answer) -> None:
    for asker in ("asker-1", "asker-2"):
        feedback.record(ctx, ask, None, answer, True, {answer["answer_id"]: 0.91}, asker)


def test_another_askers_does_not_fit_retracts_the_phrasing_at_once(ctx, answer):
    ask = ask_of(PHRASING)
    _confirmed(ctx, ask, answer)
    done = feedback.record(ctx, ask, None, answer, False, {answer["answer_id"]: 0.91}, "asker-3")
    assert done == {"recorded": True, "learned": False, "proposed": False, "retracted": 2}
    assert ctx.store.lookup(ask.qhash) is None
    assert {link["retracted_by"] for link in feedback.learned(ctx)} == {"asker-3"}


def test_the_answers_own_question_teaches_nothing(ctx, answer):
    done = feedback.record(ctx, ask_of(FAQ), None, answer, True, {answer["answer_id"]: 1.0}, "asker-1")
    assert done["learned"] is False and feedback.learned(ctx) == []


def test_no_number_of_askers_re_points_a_question_that_has_a_curated_answer(ctx, answer):
    question_id, qhash = store_question(ctx, "How long does shipping take?")
    shipping = ctx.store.save_answer(question_id, "Three to five days.", curated=True, quality=1.0)
    for n in range(5):  # the password question's askers all "pick" the shipping answer for it
        done = feedback.record(ctx, ask_of(FAQ), None, shipping, True, {shipping["answer_id"]: 0.9}, f"asker-{n}")
        assert done["learned"] is False and done["proposed"] is False
    assert feedback.learned(ctx) == []
    served, _ = ctx.store.lookup(question_hash(normalize(FAQ)))
    assert served["answer"] == ANSWER


def test_a_curated_answer_added_after_a_link_takes_its_question_back(ctx, answer):
    ask = ask_of(PHRASING)
    _confirmed(ctx, ask, answer)
    question_id = ctx.store.ensure_question(PHRASING, ask.normalized, ask.qhash)
    ctx.store.save_answer(question_id, "Use the 'Forgot password' link.", curated=True, quality=1.0)
    assert ctx.store.recache(ask.qhash)["answer"] == "Use the 'Forgot password' link."


def test_an_admin_confirms_a_proposed_phrasing_and_unlearns_a_learned_one(ctx, answer):
    ask = ask_of(PHRASING)
    feedback.record(ctx, ask, None, answer, True, {answer["answer_id"]: 0.91}, "asker-1")
    [link] = feedback.learned(ctx, tenant="")
    assert feedback.learned(ctx, tenant="acme") == []
    assert link["confirmed_at"] is None and ctx.store.lookup(ask.qhash) is None
    confirmed = feedback.confirm(ctx, link["id"])
    assert confirmed["confirmed_at"] is not None and ctx.store.lookup(ask.qhash)[0]["answer"] == ANSWER
    feedback.record(ctx, ask, None, answer, True, {answer["answer_id"]: 0.91}, "asker-2")
    view = feedback.unlearn(ctx, link["id"], by="admin-1")
    assert view["retracted_by"] == "admin-1" and ctx.store.lookup(ask.qhash) is None  # every asker's row of it
    assert {row["retracted_by"] for row in feedback.learned(ctx)} == {"admin-1"}
    assert feedback.unlearn(ctx, link["id"] + 1000) is None and feedback.confirm(ctx, link["id"] + 1000) is None


def test_with_learning_off_feedback_is_recorded_and_nothing_is_linked(config, answer):
    quiet = Context(load_settings(**config, learn=False))
    try:
        before = int(quiet.redis.get(keys.feedback_version()) or 0)
        done = feedback.record(quiet, ask_of(PHRASING), None, answer, True, {answer["answer_id"]: 0.91}, "asker-1")
        assert done == {"recorded": True, "learned": False, "proposed": False, "retracted": 0}
        assert feedback.learned(quiet) == []
        assert int(quiet.redis.get(keys.feedback_version())) == before + 1  # web processes load the new row
    finally:
        quiet.close()


def test_distinct_askers_linking_phrasings_that_mean_the_same_confirm_each_other(ctx, answer):
    offered = {answer["answer_id"]: 0.91}
    near_a, near_b, far = (np.array(v, dtype=np.float32) for v in ([0.6, 0.8], [0.8, 0.6], [-0.6, 0.8]))
    # cosines: near_a . near_b = 0.96 (they agree), far . near_a = 0.28 and far . near_b = 0 (they do not)
    one, other, unrelated = ask_of(PHRASING), ask_of("Password forgotten, how to get back in?"), ask_of(
        "Where can I see my invoices?")
    assert feedback.record(ctx, one, near_a, answer, True, offered, "asker-1")["proposed"]
    assert feedback.record(ctx, unrelated, far, answer, True, offered, "asker-2")["proposed"]  # not the same meaning
    assert feedback.record(ctx, other, near_b, answer, True, offered, "asker-1")["proposed"]  # the same asker again
    assert ctx.store.lookup(one.qhash) is None and ctx.store.lookup(other.qhash) is None
    done = feedback.record(ctx, ask_of("I lost my password, help"), near_b, answer, True, offered, "asker-3")
    assert done["learned"]  # a third asker agrees with asker-1: every phrasing of that meaning is confirmed
    for ask in (one, other):
        served, _ = ctx.store.lookup(ask.qhash)
        assert served["answer"] == ANSWER
    assert ctx.store.lookup(unrelated.qhash) is None


def test_phrasings_a_guard_tells_apart_do_not_agree(ctx, answer):
    offered, vector = {answer["answer_id"]: 0.91}, np.array([0.6, 0.8], dtype=np.float32)
    feedback.record(ctx, ask_of("How do I reset my password on Android?"), vector, answer, True, offered, "asker-1")
    done = feedback.record(ctx, ask_of("How do I reset my password on iPhone?"), vector, answer, True, offered,
                           "asker-2")
    assert done["proposed"] and not done["learned"]
