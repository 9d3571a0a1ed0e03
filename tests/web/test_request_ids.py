import io
import json
import logging

from precache import asklog, logs

from precache.models import AskLog


def test_request_id_is_echoed_and_stored_in_the_ask_log(app, client):
    r = client.post("/v1/ask", json={"question": "Where do request ids go?"}, headers={"X-Request-ID": "req-123"})
    assert r.headers["X-Request-ID"] == "req-123"
    asklog.drain(app.extensions["precache"], wait_s=10)
    with app.extensions["precache"].sessions() as session:
        row = session.query(AskLog).one()
    assert (row.request_id, row.job_id) == ("req-123", r.json["job_id"])


def test_unsafe_request_id_is_replaced(client):
    r = client.get("/healthz", headers={"X-Request-ID": "evil id; with spaces"})
    assert r.headers["X-Request-ID"] != "evil id; with spaces"
    assert len(r.headers["X-Request-ID"]) == 32


def test_json_logs_carry_the_request_id(app):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logs.install(handler, json_lines=True)
    logger = logging.getLogger("web.test")
    logger.addHandler(handler)
    try:
        with app.test_request_context(headers={"X-Request-ID": "abc"}):
            app.preprocess_request()
            logger.warning("hello")
    finally:
        logger.removeHandler(handler)
    record = json.loads(stream.getvalue().splitlines()[-1])
    assert (record["request_id"], record["message"], record["level"]) == ("abc", "hello", "WARNING")
