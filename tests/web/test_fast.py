"""Exact hits served before Flask (web/fast.py): the answer Flask gives, in one Redis round trip."""

from precache import asklog
from precache.models import AskLog
from tests.web.test_ask import _store_answer


def test_an_exact_hit_from_the_hot_cache_is_one_redis_round_trip_and_its_ask_is_logged(config, monkeypatch):
    import redis

    from web import create_app

    app = create_app(config | {"ask_log_flush_ms": 600_000})  # the writer thread stays out of the count
    client = app.test_client()
    saved = _store_answer(app, "How do I reset my password?", "Use the reset link.")
    client.post("/v1/ask", json={"question": "How do I reset my password?"})  # the hot cache holds it now
    sent = []
    real = redis.connection.AbstractConnection.send_packed_command
    monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command",
                        lambda self, *args, **kwargs: (sent.append(args), real(self, *args, **kwargs))[1])
    r = client.post("/v1/ask", json={"question": "how do I reset my password"})
    monkeypatch.undo()
    assert r.json["source"] == "exact" and r.json["answer_id"] == saved["answer_id"]
    assert len(sent) == 1, sent  # the answer's GET and the ask's push, one script
    ctx = app.extensions["precache"]
    asklog.drain(ctx, wait_s=10)
    with ctx.sessions() as session:
        rows = session.query(AskLog).order_by(AskLog.id).all()
    assert [(row.source, row.answer_id, row.question) for row in rows] == [
        ("exact", saved["answer_id"], "How do I reset my password?"),
        ("exact", saved["answer_id"], "how do I reset my password")]
    app.extensions["precache"].close()


def test_an_exact_hit_served_before_flask_is_the_answer_flask_gives(app, client):
    saved = _store_answer(app, "How do I reset my password?", "Use the reset link, café.")
    client.post("/v1/ask", json={"question": "How do I reset my password?"})  # the hot cache holds it now
    fast = client.post("/v1/ask", json={"question": "how do I reset my password", "wait_ms": 100},
                       headers={"X-Request-ID": "trace-fast-1"})
    # A tenant field (even null) takes the Flask view: the same answer, the same bytes.
    slow = client.post("/v1/ask", json={"question": "how do I reset my password", "tenant": None},
                       headers={"X-Request-ID": "trace-slow-1"})
    assert fast.status_code == slow.status_code == 200
    assert fast.data == slow.data and fast.json["answer_id"] == saved["answer_id"]
    assert fast.headers["Content-Type"] == slow.headers["Content-Type"] == "application/json"
    assert fast.headers["X-Request-ID"] == "trace-fast-1" and slow.headers["X-Request-ID"] == "trace-slow-1"
    asklog.drain(app.extensions["precache"], wait_s=10)
    with app.extensions["precache"].sessions() as session:
        ids = [row.request_id for row in session.query(AskLog).order_by(AskLog.id)]
    assert ids[-2:] == ["trace-fast-1", "trace-slow-1"]  # each logged once


def test_a_miss_read_before_flask_is_not_read_from_the_hot_cache_again(app, client, monkeypatch):
    ctx = app.extensions["precache"]
    reads, real_get = [], ctx.redis.get
    monkeypatch.setattr(ctx.redis, "get", lambda name, *a, **k: (reads.append(name), real_get(name, *a, **k))[1])
    r = client.post("/v1/ask", json={"question": "What is the airspeed of an unladen swallow?"})
    assert r.status_code == 202
    assert not [name for name in reads if "precache:answer:" in str(name)]  # the script read it; SQL was next
