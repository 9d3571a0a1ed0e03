"""The ask log off the request path: asks wait in a real Redis list and reach SQL in batches, none lost, none twice."""

import json
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from precache import asklog, keys
from precache.config import load_settings
from precache.context import Context
from precache.models import AskLog
from web import create_app

DOWN_REDIS = {"redis_url": "redis://127.0.0.1:1/0", "broker_url": "redis://127.0.0.1:1/1"}
DOWN_DATABASE = {"database_url": "postgresql+psycopg://postgres@127.0.0.1:1/none"}


def entry(i: int, **fields) -> dict:
    return {"question": f"question {i}", "qhash": f"{i:064x}", "namespace": "ns", "source": "fallback",
            "latency_ms": 1.5, "answer_id": None, "job_id": None, "request_id": f"r{i}"} | fields


def logged(ctx) -> list[AskLog]:
    with ctx.sessions() as session:
        return list(session.scalars(select(AskLog).order_by(AskLog.id)))


@pytest.fixture
def contexts(config):
    """Make contexts of their own (web processes) whose writer never writes unasked; close them after the test."""
    made = []

    def make(**overrides) -> Context:
        made.append(Context(load_settings(**(config | {"ask_log_flush_ms": 3_600_000} | overrides))))
        return made[-1]

    yield make
    for ctx in made:
        ctx.close()


def test_asks_wait_in_redis_and_are_written_in_order_with_the_time_they_were_asked(contexts):
    ctx = contexts()
    for i in range(3):
        asklog.push(ctx, **entry(i))
    pushed_at = datetime.now(timezone.utc)
    assert ctx.redis.llen(keys.asks()) == 3 and logged(ctx) == []
    time.sleep(1.1)
    assert asklog.drain(ctx) == 3
    rows = logged(ctx)
    assert [r.request_id for r in rows] == ["r0", "r1", "r2"]
    asked_at = [r.asked_at if r.asked_at.tzinfo else r.asked_at.replace(tzinfo=timezone.utc) for r in rows]
    assert all(pushed_at - timedelta(seconds=1) < at <= pushed_at for at in asked_at)
    assert ctx.redis.llen(keys.asks()) == 0
    assert asklog.drain(ctx) == 0 and len(logged(ctx)) == 3  # written once


def test_with_the_database_down_asks_stay_in_redis_until_it_is_back(contexts):
    down = contexts(**DOWN_DATABASE)
    up = contexts()
    for i in range(5):
        asklog.push(down, **entry(i))
    with pytest.raises(OperationalError):
        asklog.drain(down)
    assert down.ask_log.flush() == 0  # the writer thread's call: it says so once and keeps them
    assert up.redis.llen(keys.asks()) == 5
    assert asklog.drain(up) == 5
    assert [r.request_id for r in logged(up)] == [f"r{i}" for i in range(5)]


def test_without_redis_the_ask_is_written_to_sql_during_the_request(config, ctx):
    app = create_app(config | DOWN_REDIS)
    try:
        r = app.test_client().post("/v1/ask", json={"question": "hello"})
    finally:
        app.extensions["precache"].close()
    assert r.json["source"] == "template"
    assert [row.source for row in logged(ctx)] == ["template"]


def test_flush_interval_zero_writes_each_ask_during_its_request(config, ctx):
    app = create_app(config | {"ask_log_flush_ms": 0})
    try:
        app.test_client().post("/v1/ask", json={"question": "thanks"})
        assert [row.source for row in logged(ctx)] == ["template"]
        assert ctx.redis.llen(keys.asks()) == 0
    finally:
        app.extensions["precache"].close()


def test_concurrent_writers_write_each_ask_exactly_once(contexts):
    writers = [contexts() for _ in range(4)]
    for i in range(1200):
        asklog.push(writers[0], **entry(i))
    threads = [threading.Thread(target=asklog.drain, args=(c, 10.0, 100)) for c in writers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    rows = logged(writers[0])
    assert [r.request_id for r in rows] == [f"r{i}" for i in range(1200)]
    assert writers[0].redis.llen(keys.asks()) == 0


def test_an_ask_whose_answer_was_deleted_is_kept_without_the_link(ctx):
    from precache.normalize import normalize, question_hash

    qid = ctx.store.ensure_question("Known", normalize("Known"), question_hash(normalize("Known")))
    kept = ctx.store.save_answer(qid, "Known answer.", model="m")["answer_id"]
    asklog.push(ctx, **entry(0, source="exact", answer_id=kept))
    asklog.push(ctx, **entry(1, source="exact", answer_id=kept + 1000))  # deleted since (no such answer)
    assert asklog.drain(ctx) == 2
    assert [(r.request_id, r.answer_id) for r in logged(ctx)] == [("r0", kept), ("r1", None)]


def test_a_row_the_database_cannot_take_is_kept_aside_and_does_not_block_the_rest(contexts):
    ctx = contexts()
    asklog.push(ctx, **entry(0))
    asklog.push(ctx, **entry(1, source="s" * 40))  # longer than the column (PostgreSQL refuses it)
    asklog.push(ctx, **entry(2))
    assert asklog.drain(ctx) == 3
    assert [r.request_id for r in logged(ctx)] == ["r0", "r2"]
    [refused] = [json.loads(raw) for raw in ctx.redis.lrange(keys.asks_refused(), 0, -1)]
    assert refused["request_id"] == "r1"
    assert ctx.redis.llen(keys.asks()) == 0


def test_a_writer_that_lost_its_lock_leaves_the_list_as_it_is(contexts, monkeypatch):
    ctx = contexts()
    real_write = asklog.write

    def slow_write(sessions, entries):  # the lock expires while the batch is written; another writer has it
        refused = real_write(sessions, entries)
        ctx.redis.set(keys.asks_lock(), b"another writer's token")
        return refused

    for i in range(3):
        asklog.push(ctx, **entry(i))
    monkeypatch.setattr(asklog, "write", slow_write)
    assert asklog.drain(ctx) == 0
    assert ctx.redis.llen(keys.asks()) == 3  # not trimmed: the other writer's to write (again)
    assert len(logged(ctx)) == 3
    ctx.redis.delete(keys.asks_lock())


def test_a_redis_restart_during_a_batch_does_not_trim_the_new_list(contexts, redis_client, monkeypatch):
    ctx = contexts()
    real_write = asklog.write

    def write_then_restart(sessions, entries):
        refused = real_write(sessions, entries)
        token = ctx.redis.get(keys.asks_lock())
        redis_client.flushdb()  # Redis started again, empty...
        ctx.redis.set(keys.asks_lock(), token)  # (even were the lock still there)
        asklog.push(ctx, **entry(9))  # ...and a new ask arrived in a new list
        return refused

    for i in range(3):
        asklog.push(ctx, **entry(i))
    monkeypatch.setattr(asklog, "write", write_then_restart)
    asklog.drain(ctx)
    monkeypatch.undo()
    assert [json.loads(raw)["request_id"] for raw in ctx.redis.lrange(keys.asks(), 0, -1)] == ["r9"]
    assert asklog.drain(ctx) == 1
    assert sorted(r.request_id for r in logged(ctx)) == ["r0", "r1", "r2", "r9"]


def test_an_entry_that_is_not_an_ask_is_kept_aside_and_the_rest_written(contexts):
    ctx = contexts()
    asklog.push(ctx, **entry(0))
    ctx.redis.rpush(keys.asks(), b"not json")
    asklog.push(ctx, **entry(1))
    assert asklog.drain(ctx) == 3
    assert [r.request_id for r in logged(ctx)] == ["r0", "r1"]
    assert ctx.redis.lrange(keys.asks_refused(), 0, -1) == [b"not json"]


def test_with_flushing_off_a_row_the_database_cannot_take_is_kept_aside_too(contexts):
    ctx = contexts(ask_log_flush_ms=0)
    asklog.push(ctx, **entry(0, source="s" * 40))
    assert logged(ctx) == []
    assert [json.loads(raw)["request_id"] for raw in ctx.redis.lrange(keys.asks_refused(), 0, -1)] == ["r0"]


def test_the_asker_is_stored_with_the_ask(contexts):
    ctx = contexts()
    asklog.push(ctx, **entry(0, asker="address:198.51.100.4"))
    asklog.push(ctx, **entry(1))  # precache ask: nobody to name
    asklog.drain(ctx, wait_s=10)
    assert [row.asker for row in logged(ctx)] == ["address:198.51.100.4", None]
