"""The body of POST /v1/chat/completions (web/chat_schemas.py): what the cache cannot serve is a 400 naming
the field, a body that is not JSON a clear 4xx, unknown fields ignored as OpenAI clients expect."""

import pytest

from tests.web.test_chat import FAQ, chat, faq, short_wait  # noqa: F401 - fixtures shared with test_chat


@pytest.mark.parametrize("extra, param", [
    ({"tools": [{"type": "function", "function": {"name": "f"}}]}, "tools"),
    ({"n": 2}, "n"),
    ({"response_format": {"type": "json_object"}}, "response_format"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "http://x/y.png"}}]}]},
     "messages.0.content.0.type"),
    ({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}, "messages.1.role"),
    ({"messages": []}, "messages"),
    ({"messages": [{"role": "user", "content": "   "}]}, "messages.0.content"),
    ({"messages": [{"role": "wizard", "content": "hi"}]}, "messages.0.role"),
    ({"stream": "yes"}, "stream"),
    ({"model": 5}, "model"),
    ({"modalities": ["text", "audio"]}, "modalities"),
    ({"messages": [{"role": "tool", "content": "42", "tool_call_id": "c1"}, {"role": "user", "content": "and?"}]},
     "messages.0"),
    # Control characters in any turn, not only the question: earlier turns are kept with a follow-up.
    ({"messages": [{"role": "user", "content": "bad\x00byte"}, {"role": "assistant", "content": "ok"},
                   {"role": "user", "content": "and?"}]}, "messages.0.content"),
    ({"messages": [{"role": "system", "content": "be \x1b[31mred"}, {"role": "user", "content": "hi"}]},
     "messages.0.content"),
])
def test_what_the_cache_cannot_serve_is_a_400_naming_the_field(client, extra, param):
    body = {"model": "m", "messages": [{"role": "user", "content": FAQ}], **extra}
    r = client.post("/v1/chat/completions", json=body)
    error = r.get_json()["error"]
    assert r.status_code == 400, r.get_json()
    assert error["param"] == param and error["message"].startswith(param) and error["type"] == "invalid_request_error"


def test_a_body_that_is_not_json_is_a_clear_4xx(client):
    r = client.post("/v1/chat/completions", data="{not json", content_type="application/json")
    assert r.status_code == 400 and "JSON" in r.get_json()["error"]["message"]
    r = client.post("/v1/chat/completions", data="hi", content_type="text/plain")
    assert r.status_code == 415


def test_unknown_fields_are_ignored_as_openai_clients_expect(client, faq):
    r = chat(client, FAQ, frequency_penalty=0.5, seed=3, logit_bias={}, metadata={"a": "b"}, n=1, temperature=0.7,
             max_tokens=50, user="asker-1", parallel_tool_calls=False)
    assert r.status_code == 200 and r.headers["x-precache-source"] == "exact"
