"""A chat's follow-up made standalone (web/followup.py): looked up as its cached rewrite, per tenant."""

from precache import keys
from precache.conversation import context_hash
from tests.web.test_chat import ANSWER, FAQ, chat, faq, short_wait  # noqa: F401 - fixtures shared with test_chat


FOLLOW_UP = [{"role": "user", "content": FAQ}, {"role": "assistant", "content": ANSWER},
             {"role": "user", "content": "How long does that take?"}]


def test_a_follow_up_is_looked_up_as_its_cached_rewrite(app, client, faq):
    ctx = app.extensions["precache"]
    ctx.redis.set(keys.rewrite(ctx.ns, context_hash(FOLLOW_UP)), FAQ)
    r = chat(client, *FOLLOW_UP)
    assert r.headers["x-precache-question"] == FAQ and r.headers["x-precache-source"] == "exact"


def test_a_rewrite_cached_for_one_tenant_is_not_used_for_another(app, client, faq):
    ctx = app.extensions["precache"]
    ctx.redis.set(keys.rewrite(ctx.for_tenant("acme").ns, context_hash(FOLLOW_UP)), "What is acme's secret plan?")
    r = chat(client, *FOLLOW_UP)
    # No worker to rewrite it here: the question before it and the follow-up together stand in.
    assert r.headers["x-precache-question"] == f"{FAQ} How long does that take?"
    r = chat(client, *FOLLOW_UP, headers={"x-precache-tenant": "acme"})
    assert r.headers["x-precache-question"] == "What is acme's secret plan?"
