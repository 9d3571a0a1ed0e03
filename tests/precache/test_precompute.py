"""Precompute (precache/precompute.py): each FAQ question without a servable answer is queued once."""

import json

import pytest
import redis as redis_lib

from precache.config import load_settings
from precache.context import Context
from precache.faq import FaqEntry, import_faq
from precache.precompute import queue_unanswered, unanswered_faq
from tests.conftest import store_question


@pytest.fixture
def faq_ctx(config):
    ctx = Context(load_settings(**config, semantic_enabled=False))
    import_faq(ctx, [FaqEntry(1, "Where is the office?", "Main Street 1."), FaqEntry(2, "Do you ship abroad?", None),
                     FaqEntry(3, "How do I return an order?", None)])
    yield ctx
    ctx.close()


def test_only_faq_questions_without_an_answer_are_unanswered(faq_ctx):
    store_question(faq_ctx, "What is the weather like?")  # asked, not in the FAQ
    unanswered = unanswered_faq(faq_ctx.sessions, faq_ctx.store)
    assert [q.text for q in unanswered] == ["Do you ship abroad?", "How do I return an order?"]


def test_an_answer_below_the_gate_leaves_the_question_unanswered(faq_ctx):
    [first, second] = unanswered_faq(faq_ctx.sessions, faq_ctx.store)
    faq_ctx.store.save_answer(first.id, "Maybe.", model="m", quality=faq_ctx.settings.quality_threshold / 2)
    faq_ctx.store.save_answer(second.id, "Send it back within 30 days.", model="m", quality=1.0)
    assert [q.id for q in unanswered_faq(faq_ctx.sessions, faq_ctx.store)] == [first.id]


def test_each_unanswered_question_is_queued_once(faq_ctx, config):
    job_ids = queue_unanswered(faq_ctx)
    assert len(set(job_ids)) == 2
    assert queue_unanswered(faq_ctx) == job_ids  # single flight: the same jobs, not new ones
    queued = [json.loads(m)["headers"]["argsrepr"]
              for m in redis_lib.Redis.from_url(config["broker_url"]).lrange("precompute", 0, -1)]
    assert sorted(queued) == sorted(f"[{q}, '{j}']" for q, j in zip(
        [int(faq_ctx.jobs.get(j)["question_id"]) for j in job_ids], job_ids))


def test_a_tenants_faq_and_its_references_are_its_own(faq_ctx):
    other = faq_ctx.for_tenant("acme")
    assert unanswered_faq(other.sessions, other.store) == []  # the default tenant's FAQ is not precomputed here
    import_faq(other, [FaqEntry(1, "Do you ship abroad?", None, reference="Only within the EU.")])
    assert [q.text for q in unanswered_faq(other.sessions, other.store)] == ["Do you ship abroad?"]
    qid = unanswered_faq(other.sessions, other.store)[0].id
    assert other.store.reference(qid) == "Only within the EU." and faq_ctx.store.reference(qid) is None
    assert len(unanswered_faq(faq_ctx.sessions, faq_ctx.store)) == 2  # the default tenant's list is unchanged
