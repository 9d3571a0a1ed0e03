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


def test_a_question_missing_from_the_hot_cache_is_read_from_sql_and_logged_once(app, client):
    saved = _store_answer(app, "Known question", "Known answer.")
    ctx = app.extensions["precache"]
    ctx.redis.delete(*ctx.redis.keys("precache:answer:*"))
    r = client.post("/v1/ask", json={"question": "Known question"})
    assert r.json["source"] == "exact" and r.json["answer_id"] == saved["answer_id"]
    asklog.drain(ctx, wait_s=10)
    with ctx.sessions() as session:
        assert [(row.source, row.answer_id) for row in session.query(AskLog)] == [("exact", saved["answer_id"])]


def test_the_asker_reaches_the_ask_log_on_the_fast_path_and_through_flask(config):
    """An exact hit (web/fast.py) and a miss (the view) log who asked: the client's address, or the asker the
    calling app vouches for with the feedback key."""
    from web import create_app

    app = create_app(config | {"feedback_key": "s3cret"})
    client = app.test_client()
    _store_answer(app, "Known question", "Known answer.")
    vouched = {"X-Feedback-Key": "s3cret", "X-Asker-Id": "user-7"}
    client.post("/v1/ask", json={"question": "Known question"}, environ_base={"REMOTE_ADDR": "198.51.100.4"})
    client.post("/v1/ask", json={"question": "Known question"}, headers=vouched)
    client.post("/v1/ask", json={"question": "Unknown question", "detail": "quick"},
                environ_base={"REMOTE_ADDR": "198.51.100.5"})
    client.post("/v1/ask", json={"question": "Unknown question"}, headers={"X-Asker-Id": "user-7"},
                environ_base={"REMOTE_ADDR": "198.51.100.6"})  # not vouched for: the address is the asker
    ctx = app.extensions["precache"]
    asklog.drain(ctx, wait_s=10)
    with ctx.sessions() as session:
        rows = session.query(AskLog).order_by(AskLog.id).all()
    assert [(r.source, r.asker) for r in rows] == [
        ("exact", "address:198.51.100.4"), ("exact", "asker:user-7"),
        ("fallback", "address:198.51.100.5"), ("fallback", "address:198.51.100.6")]
    ctx.close()
