
from precache import keys
from precache.config import load_settings
from precache.context import Context
from precache.normalize import question_hash
from tests.conftest import store_question as _question



def test_saved_answer_is_hot_then_refilled_from_sql(ctx, redis_client):
    qid, qhash = _question(ctx, "What are your opening hours?")
    saved = ctx.store.save_answer(qid, "Nine to five.", model="m", quality=0.9)
    assert ctx.store.lookup(qhash) == (saved, "redis")
    redis_client.flushdb()
    assert ctx.store.lookup(qhash) == (saved, "sql")
    assert redis_client.ttl(keys.answer(ctx.ns, qhash)) > 0  # refilled, with a TTL
    assert ctx.store.lookup(qhash)[1] == "redis"


def test_unknown_question_is_a_miss(ctx):
    assert ctx.store.lookup(question_hash("never asked")) is None


def test_curated_answer_wins_over_generated(ctx, redis_client):
    qid, qhash = _question(ctx, "Where is the office?")
    ctx.store.save_answer(qid, "Somewhere, probably.", model="m")
    ctx.store.save_answer(qid, "Main Street 1.", curated=True, quality=1.0)
    redis_client.flushdb()
    assert ctx.store.lookup(qhash)[0]["answer"] == "Main Street 1."


def test_other_namespace_answers_are_not_served(ctx, config, redis_client):
    qid, qhash = _question(ctx, "What is the refund policy?")
    ctx.store.save_answer(qid, "Thirty days.", model="m")
    other = Context(load_settings(**config, prompt_version="v2"))
    assert other.store.lookup(qhash) is None
    other.close()


def test_ensure_question_is_idempotent(ctx):
    first, _ = _question(ctx, "Same question")
    again, _ = _question(ctx, "same   QUESTION?")
    assert first == again


def test_detailed_replaces_quick_only_at_equal_or_higher_quality(ctx, redis_client):
    qid, qhash = _question(ctx, "How do I back up my phone?")
    ctx.store.save_answer(qid, "Use the cloud.", level="quick", quality=0.6)
    ctx.store.save_answer(qid, "A worse long answer.", level="detailed", quality=0.5)
    assert ctx.store.lookup(qhash)[0]["answer"] == "Use the cloud."
    ctx.store.save_answer(qid, "A good long answer.", level="detailed", quality=0.6)
    assert ctx.store.lookup(qhash)[0]["answer"] == "A good long answer."
    redis_client.flushdb()
    assert ctx.store.lookup(qhash)[0]["answer"] == "A good long answer."


def test_an_invalidated_answer_leaves_the_paraphrases_linked_to_its_question(ctx):
    from sqlalchemy import update

    from precache import admin
    from precache.models import Question

    canonical, canonical_hash = _question(ctx, "How do I change my delivery address?")
    paraphrase, paraphrase_hash = _question(ctx, "can I send my order somewhere else")
    with ctx.sessions() as session:
        session.execute(update(Question).where(Question.id == paraphrase).values(canonical_id=canonical))
        session.commit()
    wrong = ctx.store.save_answer(canonical, "Call 555-0100.", model="m", quality=0.9)
    assert ctx.store.lookup(paraphrase_hash)[0]["answer_id"] == wrong["answer_id"]  # now hot under its own hash
    admin.reject(ctx, wrong["answer_id"])
    assert ctx.store.lookup(paraphrase_hash) is None and ctx.store.lookup(canonical_hash) is None
    right = ctx.store.save_answer(canonical, "Open Orders and choose Edit address.", model="m", quality=0.9)
    assert ctx.store.lookup(paraphrase_hash)[0]["answer_id"] == right["answer_id"]
