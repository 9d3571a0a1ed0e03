"""Asks recorded while Redis or the database is down, then written and queued by the sweep."""

import base64
import json
import time

import redis as redis_lib
from kombu import Connection

from precache import keys
from precache.broker import held_job_ids
from precache.config import load_settings
from precache.context import Context
from precache.jobs import LOCK_TTL_S, PENDING
from precache.models import AskLog, Question
from precache.normalize import normalize, question_hash
from precache.queueing import QUICK
from precache.recovery import MAX_FAILURES, defer, sweep
from web import create_app

DOWN_REDIS = {"redis_url": "redis://127.0.0.1:1/0", "broker_url": "redis://127.0.0.1:1/1"}
DOWN_DATABASE = {"database_url": "postgresql+psycopg://postgres@127.0.0.1:1/none"}


def _rows(ctx, model):
    with ctx.sessions() as session:
        return session.query(model).all()


def test_a_miss_without_redis_is_kept_in_sql_then_queued_by_the_sweep(config, ctx):
    app = create_app(config | DOWN_REDIS)
    r = app.test_client().post("/v1/ask", json={"question": "What happens during an outage?"})
    app.extensions["precache"].close()
    assert r.status_code == 202 and r.json["source"] == "fallback" and r.json["queued"] is False
    assert "job_id" not in r.json
    [question] = _rows(ctx, Question)
    assert question.text == "What happens during an outage?"
    assert [row.source for row in _rows(ctx, AskLog)] == ["fallback"]
    assert sweep(ctx) == {"written": 0, "queued": 1, "resent": 0, "dropped": 0}
    job_id = ctx.jobs.pending_job(ctx.ns, question.qhash, "quick")
    assert ctx.jobs.get(job_id)["question_id"] == str(question.id)
    assert sweep(ctx)["queued"] == 0  # idempotent: it has a job now


def test_without_the_database_hits_come_from_redis_and_writes_wait_in_redis(config, ctx):
    known = normalize("Known question")
    qid = ctx.store.ensure_question("Known question", known, question_hash(known))
    ctx.store.save_answer(qid, "Known answer.", model="m")  # in SQL and in the hot cache
    down = create_app(config | DOWN_DATABASE)
    client = down.test_client()
    hit = client.post("/v1/ask", json={"question": "known question"})
    miss = client.post("/v1/ask", json={"question": "A brand new question?"})
    ready = client.get("/readyz")
    down.extensions["precache"].close()
    assert (hit.status_code, hit.json["source"], hit.json["answer"]) == (200, "exact", "Known answer.")
    assert (miss.status_code, miss.json["queued"]) == (202, False)
    assert ready.status_code == 200 and ready.json["status"] == "degraded"
    kept = [json.loads(raw)["kind"] for raw in ctx.redis.lrange(keys.outbox(), 0, -1)]
    assert kept == ["question"]
    waiting = [json.loads(raw)["source"] for raw in ctx.redis.lrange(keys.asks(), 0, -1)]
    assert waiting == ["exact", "fallback"]  # the web's writer could not write them: they wait

    assert sweep(ctx) == {"written": 3, "queued": 1, "resent": 0, "dropped": 0}
    assert sorted(row.source for row in _rows(ctx, AskLog)) == ["exact", "fallback"]
    assert ctx.redis.llen(keys.outbox()) == ctx.redis.llen(keys.asks()) == 0
    new = [q for q in _rows(ctx, Question) if q.text == "A brand new question?"]
    assert len(new) == 1 and ctx.jobs.pending_job(ctx.ns, new[0].qhash, "quick")


def test_asks_an_earlier_version_kept_in_the_outbox_are_still_written(ctx):
    fields = dict(question="Old ask", qhash=question_hash(normalize("Old ask")), namespace=ctx.store.namespace,
                  latency_ms=2.0, answer_id=None, job_id=None, request_id="r-old")
    defer(ctx.redis, "ask", source="fallback", **fields)
    defer(ctx.redis, "ask", source="s" * 40, **(fields | {"request_id": "r-bad"}))  # too long for its column
    assert sweep(ctx)["written"] == 2
    assert [(row.request_id, row.source) for row in _rows(ctx, AskLog)] == [("r-old", "fallback")]
    assert [json.loads(raw)["request_id"] for raw in ctx.redis.lrange(keys.asks_refused(), 0, -1)] == ["r-bad"]
    assert ctx.redis.llen(keys.outbox()) == 0


def test_the_sweep_leaves_a_question_that_keeps_failing(ctx):
    qhash = question_hash(normalize("Always fails"))
    ctx.store.ensure_question("Always fails", normalize("Always fails"), qhash)
    ctx.redis.set(keys.failures(ctx.ns, qhash), MAX_FAILURES)
    assert sweep(ctx)["queued"] == 0


def test_both_stores_down_is_a_503_with_the_fallback(config):
    app = create_app(config | DOWN_REDIS | DOWN_DATABASE)
    r = app.test_client().post("/v1/ask", json={"question": "Is anything up?"})
    streamed = app.test_client().get("/v1/ask/stream", query_string={"question": "Is anything up?"})
    app.extensions["precache"].close()
    for response in (r, streamed):
        assert response.status_code == 503 and response.json["error"]["code"] == "queue_unavailable"
        assert response.json["answer"] == config.get("fallback_answer", load_settings().fallback_answer)


def test_a_job_whose_message_the_broker_lost_is_sent_again_by_the_sweep(config):
    ctx = Context(load_settings(**{**config, "generation_timeout_s": 0.5}))
    broker = redis_lib.Redis.from_url(config["broker_url"])
    try:
        text = "Is a message taken by a dying worker lost?"
        qhash = question_hash(normalize(text))
        qid = ctx.store.ensure_question(text, normalize(text), qhash)
        job_id, _ = ctx.jobs.enqueue(ctx.ns, qhash, lambda: qid)
        time.sleep(0.6)  # older than GENERATION_TIMEOUT_S: a worker holding it unread has had time to read it
        assert job_id in held_job_ids(config["broker_url"])
        lock = keys.pending(ctx.ns, qhash, "quick")
        ctx.redis.expire(lock, 5)  # as if it had waited behind a backlog for almost LOCK_TTL_S
        assert sweep(ctx)["resent"] == 0  # still queued: nothing to send
        assert ctx.redis.ttl(lock) > LOCK_TTL_S - 5  # but its lock is kept: askers keep joining this job

        # A worker's BRPOP takes it, and the worker dies before it records the message as unacknowledged.
        assert broker.rpop(QUICK) is not None and held_job_ids(config["broker_url"]) == set()
        time.sleep(0.6)
        assert sweep(ctx)["resent"] == 1
        [raw] = broker.lrange(QUICK, 0, -1)
        args = json.loads(base64.b64decode(json.loads(raw)["body"]))[0]
        assert args == [qid, job_id] and ctx.jobs.get(job_id)["status"] == PENDING  # the askers' job goes on
        time.sleep(0.6)
        assert sweep(ctx)["resent"] == 0  # queued again: sent once, not at every sweep

        # Taken by a live worker, unacknowledged: held, not lost.
        with Connection(config["broker_url"]) as conn:
            message = conn.default_channel.basic_get(QUICK, no_ack=False)
            assert message is not None and broker.llen(QUICK) == 0
            assert held_job_ids(config["broker_url"]) == {job_id}
            assert sweep(ctx)["resent"] == 0
            message.ack()

        ctx.jobs.finish(job_id, ctx.ns, qhash, answer_id=None, error="done with it")
        assert ctx.jobs.sent_before(time.time()) == []  # a finished job is no longer watched
        assert held_job_ids("amqp://guest@127.0.0.1//") is None  # AMQP brokers give messages back themselves
    finally:
        broker.close()
        ctx.close()


def test_the_sweep_queues_a_tenant_question_in_the_tenant_namespace_and_only_there(config, ctx):
    app = create_app(config | DOWN_REDIS)
    r = app.test_client().post("/v1/ask", json={"question": "How do acme invoices get emailed?", "tenant": "acme"})
    app.extensions["precache"].close()
    assert r.status_code == 202 and r.json["queued"] is False
    [question] = _rows(ctx, Question)
    assert sweep(ctx)["queued"] == 1
    acme = ctx.for_tenant("acme")
    assert acme.jobs.pending_job(acme.ns, question.qhash, "quick") is not None
    assert ctx.jobs.pending_job(ctx.ns, question.qhash, "quick") is None  # not generated for everyone else
    [message] = [json.loads(m) for m in redis_lib.Redis.from_url(config["broker_url"]).lrange(QUICK, 0, -1)]
    assert message["headers"]["kwargsrepr"] == "{'tenant': 'acme'}"
    job_id = acme.jobs.pending_job(acme.ns, question.qhash, "quick")
    acme.store.save_answer(question.id, "By email on the first of the month.", model="m", quality=0.9)
    acme.jobs.finish(job_id, acme.ns, question.qhash, answer_id=1)
    assert sweep(ctx)["queued"] == 0  # answered where it was asked: nothing to do in any namespace


def test_tenant_of_reads_the_namespaces_of_this_model_and_prompt_only():
    settings = load_settings()
    assert settings.tenant_of(settings.namespace) == ""
    assert settings.tenant_of(settings.namespace_for("acme")) == "acme"
    assert settings.tenant_of("other-backend:other-model:v1") is None


def test_an_invalidation_during_a_redis_outage_is_dropped_from_the_hot_cache_by_the_sweep(config, ctx):
    from precache import admin
    from precache.models import HotCacheDrop

    text = "How do I close my account?"
    n = normalize(text)
    qid = ctx.store.ensure_question(text, n, question_hash(n))
    answer = ctx.store.save_answer(qid, "Write to support.", model="m", quality=0.9)
    assert ctx.redis.exists(keys.answer(ctx.ns, question_hash(n)))  # hot
    outage = Context(load_settings(**config | DOWN_REDIS))
    admin.reject(outage, answer["answer_id"])  # SQL has it; Redis cannot be told
    outage.close()
    # The old answer is still in the hot cache (the fast path would serve it): the drop waits in SQL.
    assert json.loads(ctx.redis.get(keys.answer(ctx.ns, question_hash(n))))["answer_id"] == answer["answer_id"]
    assert len(_rows(ctx, HotCacheDrop)) == 1
    assert sweep(ctx)["dropped"] == 1
    assert not ctx.redis.exists(keys.answer(ctx.ns, question_hash(n))) and _rows(ctx, HotCacheDrop) == []
    assert ctx.store.lookup(question_hash(n)) is None  # SQL no longer serves it either
