import pytest

from precache import asklog
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


def test_a_question_missing_from_the_hot_cache_is_read_from_sql_and_logged_once(app, client):
    saved = _store_answer(app, "Known question", "Known answer.")
    ctx = app.extensions["precache"]
    ctx.redis.delete(*ctx.redis.keys("precache:answer:*"))
    r = client.post("/v1/ask", json={"question": "Known question"})
    assert r.json["source"] == "exact" and r.json["answer_id"] == saved["answer_id"]
    asklog.drain(ctx, wait_s=10)
    with ctx.sessions() as session:
        assert [(row.source, row.answer_id) for row in session.query(AskLog)] == [("exact", saved["answer_id"])]
