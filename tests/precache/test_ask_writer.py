"""Each web process's ask-log writer (precache/ask_writer.py): its thread writes the asks unasked, closing writes
what waits, and asks a Redis lost with its data are written once, by the process that took them."""

import time

from precache import asklog, keys
from tests.precache.test_asklog import contexts, entry, logged  # noqa: F401 - fixture shared with test_asklog
from web import create_app


def wait_until(check, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while not (found := check()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return found


def test_asks_redis_loses_before_they_are_written_are_written_by_the_process_that_took_them(contexts, redis_client):
    ctx = contexts()
    for i in range(3):
        asklog.push(ctx, **entry(i))
    redis_client.flushdb()  # Redis started again without persistence: the list is gone
    asklog.push(ctx, **entry(3))  # a new list begins
    assert ctx.ask_log.flush() == 4
    assert sorted(r.request_id for r in logged(ctx)) == ["r0", "r1", "r2", "r3"]
    assert ctx.ask_log.flush() == 0 and len(logged(ctx)) == 4  # each once


def test_asks_another_process_wrote_are_not_written_again(contexts, redis_client):
    mine = contexts()
    other = contexts()
    for i in range(3):
        asklog.push(mine, **entry(i))
    assert asklog.drain(other) == 3
    assert mine.ask_log.flush() == 0  # they are in SQL: forgotten here
    redis_client.flushdb()  # had they been kept, they would now count as lost and be written twice
    assert mine.ask_log.flush() == 0
    assert [r.request_id for r in logged(mine)] == ["r0", "r1", "r2"]


def test_asks_another_process_wrote_just_before_redis_lost_its_data_are_not_written_again(contexts, redis_client):
    mine = contexts()
    other = contexts()
    for i in range(3):
        asklog.push(mine, **entry(i))
    assert asklog.drain(other) == 3  # written by the other web process...
    redis_client.flushdb()  # ...and Redis lost the record of it before this one looked
    asklog.push(mine, **entry(3))
    assert mine.ask_log.flush() == 1  # only the new one
    assert [r.request_id for r in logged(mine)] == ["r0", "r1", "r2", "r3"]


def test_the_web_writes_its_asks_without_being_asked_to(config, ctx):
    app = create_app(config | {"ask_log_flush_ms": 50})
    try:
        client = app.test_client()
        for question in ("hello", "thanks", "What is a mutex?"):
            client.post("/v1/ask", json={"question": question})
        rows = wait_until(lambda: len(logged(ctx)) == 3 and logged(ctx))
        assert rows, "the writer thread wrote the three asks"
        assert [r.source for r in rows] == ["template", "template", "fallback"]
        assert ctx.redis.llen(keys.asks()) == 0
    finally:
        app.extensions["precache"].close()


def test_closing_the_process_writes_what_waits(config, ctx):
    app = create_app(config | {"ask_log_flush_ms": 3_600_000})
    app.test_client().post("/v1/ask", json={"question": "hello"})
    assert logged(ctx) == []
    app.extensions["precache"].close()
    assert [r.source for r in logged(ctx)] == ["template"]
