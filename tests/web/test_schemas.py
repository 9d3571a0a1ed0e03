"""Request bodies (web/schemas.py): a bad ask is a 4xx whose code and message say what to fix."""

import pytest


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
