import time

import pytest

from precache import asklog
from precache.config import load_settings
from precache.models import AskLog
from precache.normalize import normalize, question_hash


def _store_answer(app, question, text):
    ctx = app.extensions["precache"]
    n = normalize(question)
    qid = ctx.store.ensure_question(question, n, question_hash(n))
    return ctx.store.save_answer(qid, text, model="m", quality=0.8)


def test_exact_hit_ignores_case_spacing_and_punctuation(app, client):
    saved = _store_answer(app, "How do I reset my password?", "Use the reset link.")
    r = client.post("/v1/ask", json={"question": "how do i   RESET my password"})
    assert r.status_code == 200
    assert r.json == {"status": "ready", "answer": "Use the reset link.", "source": "exact", "quality": 0.8,
                      "answer_id": saved["answer_id"], "matched_question": "How do I reset my password?",
                      "level": "quick"}


def test_greeting_is_answered_from_a_template(client):
    r = client.post("/v1/ask", json={"question": "Hello there!"})
    assert r.status_code == 200
    assert r.json["source"] == "template" and r.json["answer"]


def test_custom_templates_file(config, tmp_path):
    from web import create_app

    path = tmp_path / "t.yaml"
    path.write_text('intents:\n  - name: pricing\n    patterns: ["how much( is it)?"]\n    answer: "Free."\n')
    app = create_app(config | {"templates_file": path})
    assert app.test_client().post("/v1/ask", json={"question": "How much?"}).json["answer"] == "Free."
    app.extensions["precache"].close()


def test_miss_gets_202_job_and_fallback_then_joins_the_same_job(client):
    first = client.post("/v1/ask", json={"question": "What is the meaning of life?"})
    assert first.status_code == 202
    body = first.json
    assert body["status"] == "pending" and body["source"] == "fallback"
    assert body["answer"] == load_settings().fallback_answer
    assert body["poll"] == f"/v1/jobs/{body['job_id']}"
    again = client.post("/v1/ask", json={"question": "what is the meaning of life"})
    assert again.json["job_id"] == body["job_id"]
    job = client.get(body["poll"])
    assert job.status_code == 200 and job.json["status"] == "pending"


def test_wait_ms_is_honoured_when_no_worker_answers(client):
    started = time.monotonic()
    r = client.post("/v1/ask", json={"question": "Will anyone answer this?", "wait_ms": 300})
    elapsed = time.monotonic() - started
    assert r.status_code == 202
    assert 0.3 <= elapsed < 3  # waited, then gave the fallback (not a timing claim: a sanity bound)


def test_every_ask_is_logged_with_source_and_latency(app, client):
    _store_answer(app, "Known question", "Known answer.")
    client.post("/v1/ask", json={"question": "Known question"})
    client.post("/v1/ask", json={"question": "thanks"})
    client.post("/v1/ask", json={"question": "Unknown question"})
    asklog.drain(app.extensions["precache"], wait_s=10)  # written in batches, off the request path
    with app.extensions["precache"].sessions() as session:
        rows = session.query(AskLog).order_by(AskLog.id).all()
    assert [r.source for r in rows] == ["exact", "template", "fallback"]
    assert all(r.latency_ms > 0 for r in rows)
    assert rows[2].job_id is not None


@pytest.mark.parametrize("kwargs, status, code", [
    ({"json": {"question": ""}}, 400, "invalid_field"),
    ({"json": {"question": "   \t "}}, 400, "invalid_field"),
    ({"json": {"question": "?!"}}, 400, "invalid_field"),
    ({"json": {"question": "x" * 2001}}, 400, "question_too_long"),
    ({"json": {"question": 42}}, 400, "invalid_field"),
    ({"json": {"question": "hi", "wait_ms": "soon"}}, 400, "invalid_field"),
    ({"json": {"question": "hi", "wait_ms": -1}}, 400, "invalid_field"),
    ({"json": {"question": "hi", "wait_ms": 10**9}}, 400, "invalid_field"),
    ({"json": {"question": "hi", "detail": "long"}}, 400, "invalid_field"),
    ({"json": {"question": "hi", "colour": "red"}}, 400, "invalid_field"),
    ({"json": {}}, 400, "invalid_field"),
    ({"json": ["question"]}, 400, "invalid_body"),
    ({"json": {"question": "bad\x00byte"}}, 400, "invalid_field"),
    ({"data": "{not json", "content_type": "application/json"}, 400, "invalid_json"),
    ({"data": b"\xff\xfe{}", "content_type": "application/json"}, 400, "invalid_json"),
    ({"data": "question=hi", "content_type": "application/x-www-form-urlencoded"}, 415, "unsupported_media_type"),
    ({"data": "x" * 70000, "content_type": "application/json"}, 413, "body_too_large"),
])
def test_bad_input_gets_a_4xx_saying_what_to_fix(client, kwargs, status, code):
    r = client.post("/v1/ask", **kwargs)
    assert r.status_code == status
    assert r.json["error"]["code"] == code
    assert len(r.json["error"]["message"]) > 10


def test_unknown_route_and_method_are_json_errors(client):
    assert client.get("/v1/nothing").json["error"]["code"] == "not_found"
    r = client.get("/v1/ask")
    assert r.status_code == 405 and "error" in r.json


def test_stale_answer_is_served_and_a_refresh_is_queued(app, client):
    import json
    from datetime import timedelta

    import redis as redis_lib

    from precache.models import Answer, utcnow
    from tests.conftest import BROKER_URL

    saved = _store_answer(app, "What is the warranty period?", "Two years.")
    ctx = app.extensions["precache"]
    with ctx.sessions() as session:
        session.get(Answer, saved["answer_id"]).expires_at = utcnow() - timedelta(seconds=1)
        session.commit()
    ctx.redis.flushdb()
    r = client.post("/v1/ask", json={"question": "what is the warranty period"})
    assert r.status_code == 200 and r.json["answer"] == "Two years." and r.json["stale"] is True
    assert redis_lib.Redis.from_url(BROKER_URL).llen("quick") == 0  # the stale answer is served: no hurry
    [message] = [json.loads(m) for m in redis_lib.Redis.from_url(BROKER_URL).lrange("precompute", 0, -1)]
    assert message["headers"]["task"] == "worker.tasks.generate_quick_answer"
    assert "'force': True" in message["headers"]["kwargsrepr"]
    again = client.post("/v1/ask", json={"question": "what is the warranty period"})
    assert again.json["stale"] is True
    assert redis_lib.Redis.from_url(BROKER_URL).llen("precompute") == 1  # one refresh, however many askers


def test_detailed_request_names_the_detailed_job_when_not_ready(app, client):
    _store_answer(app, "How do I pair my headphones?", "Hold the button.")
    r = client.post("/v1/ask", json={"question": "How do I pair my headphones?", "detail": "detailed"})
    assert r.status_code == 200 and r.json["level"] == "quick" and r.json["job_id"]
    assert client.get(f"/v1/jobs/{r.json['job_id']}").json["status"] == "pending"


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


def test_a_question_missing_from_the_hot_cache_is_read_from_sql_and_logged_once(app, client):
    saved = _store_answer(app, "Known question", "Known answer.")
    ctx = app.extensions["precache"]
    ctx.redis.delete(*ctx.redis.keys("precache:answer:*"))
    r = client.post("/v1/ask", json={"question": "Known question"})
    assert r.json["source"] == "exact" and r.json["answer_id"] == saved["answer_id"]
    asklog.drain(ctx, wait_s=10)
    with ctx.sessions() as session:
        assert [(row.source, row.answer_id) for row in session.query(AskLog)] == [("exact", saved["answer_id"])]


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
