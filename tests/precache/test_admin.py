"""The quality gate, operator review actions and tenant isolation, on SQLite and PostgreSQL."""

import pytest

from precache import admin
from tests.conftest import store_question as _question


def test_answer_below_threshold_is_kept_but_never_served(ctx, redis_client):
    qid, qhash = _question(ctx, "How do I reset my router?")
    bad = ctx.store.save_answer(qid, "Router router router.", model="m", quality=0.1)
    assert ctx.store.lookup(qhash) is None
    redis_client.flushdb()
    assert ctx.store.lookup(qhash) is None  # nor from SQL
    assert not ctx.store.servable_answer(bad["answer_id"])
    assert ctx.store.gated_count(qid) == 1
    assert [row["answer_id"] for row in admin.awaiting_review(ctx)] == [bad["answer_id"]]
    good = ctx.store.save_answer(qid, "Hold the reset button for ten seconds.", model="m", quality=0.9)
    assert ctx.store.lookup(qhash)[0]["answer_id"] == good["answer_id"]


def test_approve_serves_and_invalidate_stops_serving(ctx, redis_client):
    qid, qhash = _question(ctx, "Can I pay by invoice?")
    low = ctx.store.save_answer(qid, "Yes, for business accounts.", model="m", quality=0.2)
    assert ctx.store.lookup(qhash) is None
    assert admin.approve(ctx, low["answer_id"])["review"] == "approved"
    assert ctx.store.lookup(qhash)[0]["answer_id"] == low["answer_id"]
    assert admin.awaiting_review(ctx) == []
    admin.reject(ctx, low["answer_id"])
    assert ctx.store.lookup(qhash) is None  # the hot cache entry is gone too
    redis_client.flushdb()
    assert ctx.store.lookup(qhash) is None


def test_pinned_answer_wins_and_replace_stores_a_curated_answer(ctx):
    qid, qhash = _question(ctx, "What is the warranty?")
    first = ctx.store.save_answer(qid, "One year.", model="m", quality=0.7)
    ctx.store.save_answer(qid, "Two years in the EU.", model="m", quality=0.9)
    admin.pin(ctx, first["answer_id"])
    assert ctx.store.lookup(qhash)[0]["answer"] == "One year."
    replaced = admin.replace(ctx, first["answer_id"], "Two years, everywhere.")
    served = ctx.store.lookup(qhash)[0]
    assert served["answer"] == "Two years, everywhere." and served["curated"]
    assert served["answer_id"] == replaced["replaced_by"]


def test_unknown_answer_is_not_found(ctx):
    with pytest.raises(admin.NotFound):
        admin.approve(ctx, 999999)


def test_tenants_never_see_each_others_answers(ctx, redis_client):
    acme, globex = ctx.for_tenant("acme"), ctx.for_tenant("globex")
    qid, qhash = _question(ctx, "What is the support phone number?")
    acme.store.save_answer(qid, "Call ACME on 555-0100.", curated=True, quality=1.0)
    globex.store.save_answer(qid, "Globex: 555-0199.", model="m", quality=0.9)
    assert acme.store.lookup(qhash)[0]["answer"] == "Call ACME on 555-0100."
    assert globex.store.lookup(qhash)[0]["answer"] == "Globex: 555-0199."
    assert ctx.store.lookup(qhash) is None  # no tenant: neither
    assert len({acme.ns, globex.ns, ctx.ns}) == 3
    redis_client.flushdb()
    assert globex.store.lookup(qhash)[0]["answer"] == "Globex: 555-0199."
    with pytest.raises(admin.NotFound):  # an operator of one tenant cannot touch another's answers
        admin.reject(globex, acme.store.lookup(qhash)[0]["answer_id"])


def test_changing_the_model_makes_answers_stale_not_wrong(ctx, config):
    from precache.config import load_settings
    from precache.context import Context

    qid, qhash = _question(ctx, "How long is shipping?")
    ctx.store.save_answer(qid, "Three days.", model="m", quality=0.9)
    other = Context(load_settings(**config, llm_model="another-model.gguf"))
    assert other.store.lookup(qhash) is None
    assert other.store.gated_count(qid) == 0
    other.close()


def test_a_curated_answer_askers_say_does_not_fit_waits_for_an_admin_in_the_review_list(ctx):
    from tests.precache.test_feedback import ask_of

    from precache import feedback

    qid, _ = _question(ctx, "How do I change my e-mail address?")
    curated = ctx.store.save_answer(qid, "Open Settings, then Account.", curated=True, quality=1.0)
    low_qid, _ = _question(ctx, "Can I get a paper invoice?")
    low = ctx.store.save_answer(low_qid, "Invoice invoice.", model="m", quality=0.1)
    for asker, phrasing in (("a", "How do I change my e-mail?"), ("b", "Change e-mail address"),
                            ("b", "Where to change my mail?")):
        feedback.record(ctx, ask_of(phrasing), None, curated, False, {curated["answer_id"]: 0.95}, asker)
    rows = admin.awaiting_review(ctx)
    assert [(row["answer_id"], row["reason"]) for row in rows] == [(curated["answer_id"], "reported"),
                                                                    (low["answer_id"], "low_quality")]
    assert rows[0]["reports"] == 2 and "Where to change my mail?" in rows[0]["phrasings"]
    assert ctx.for_tenant("acme") and admin.awaiting_review(ctx.for_tenant("acme")) == []  # reports are per tenant
    admin.approve(ctx, curated["answer_id"])  # the admin keeps it: it leaves the list
    assert [row["answer_id"] for row in admin.awaiting_review(ctx)] == [low["answer_id"]]
