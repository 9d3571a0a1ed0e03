"""POST /v1/chat/completions and GET /v1/models without a worker: the wire format, instant answers,
bad bodies, cache control and follow-ups (tests/integration/test_chat.py drives it with real clients)."""

import json

import pytest
from sqlalchemy import func, select

from precache import keys
from precache.models import AskLog, Question
from web.chat import cache_policy, split

FAQ = "How do I reset my password?"
ANSWER = "Open Settings, choose Security, then Reset password. A link arrives by email within a minute."


@pytest.fixture(autouse=True)
def short_wait(app):
    """No worker runs here: a miss gives up waiting for its answer after 0.3 s."""
    app.extensions["precache"].settings.chat_wait_ms = 300


@pytest.fixture
def faq(app):
    ctx = app.extensions["precache"]
    from tests.conftest import store_question

    question_id, _ = store_question(ctx, FAQ)
    return ctx.store.save_answer(question_id, ANSWER, curated=True, quality=1.0)


def chat(client, *messages, headers=None, **extra):
    turns = [{"role": "user", "content": m} if isinstance(m, str) else m for m in messages]
    return client.post("/v1/chat/completions", json={"model": "gpt-4o-mini", "messages": turns, **extra},
                       headers=headers or {})


def chunks(response) -> list:
    lines = [line.removeprefix("data: ") for line in response.get_data(as_text=True).split("\n\n") if line]
    assert lines[-1] == "[DONE]"
    return [json.loads(line) for line in lines[:-1]]


def test_models_lists_the_configured_model(client):
    body = client.get("/v1/models").get_json()
    assert body["object"] == "list" and [m["id"] for m in body["data"]] == ["precache"]


def test_a_curated_answer_comes_back_as_a_chat_completion_with_its_headers(client, faq):
    r = chat(client, {"role": "system", "content": "You are helpful."}, FAQ)
    body = r.get_json()
    assert r.status_code == 200 and body["object"] == "chat.completion" and body["model"] == "gpt-4o-mini"
    assert body["id"].startswith("chatcmpl-")
    [choice] = body["choices"]
    assert choice["message"] == {"role": "assistant", "content": ANSWER, "refusal": None}
    assert choice["finish_reason"] == "stop"
    usage = body["usage"]
    assert usage["completion_tokens"] > 0 and usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert r.headers["x-precache-source"] == "exact"
    assert r.headers["x-precache-answer-id"] == str(faq["answer_id"])
    assert r.headers["x-precache-question"] == FAQ


def test_a_streamed_instant_answer_comes_in_chunks_that_join_to_it(client, faq):
    r = chat(client, FAQ, stream=True, stream_options={"include_usage": True})
    assert r.status_code == 200 and r.mimetype == "text/event-stream"
    assert r.headers["x-precache-source"] == "exact"
    events = chunks(r)
    assert all(e["object"] == "chat.completion.chunk" and e["id"] == events[0]["id"] for e in events)
    assert events[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    deltas = [e["choices"][0]["delta"].get("content") for e in events[1:] if e["choices"]]
    text = "".join(d for d in deltas if d)
    assert text == ANSWER and len([d for d in deltas if d]) >= 2
    assert events[-2]["choices"][0]["finish_reason"] == "stop"
    assert events[-1]["choices"] == [] and events[-1]["usage"]["completion_tokens"] > 0


def test_a_template_answer_is_served_as_a_chat(client):
    r = chat(client, "hello")
    assert r.status_code == 200 and r.headers["x-precache-source"] == "template"
    assert r.get_json()["choices"][0]["message"]["content"]


def test_a_miss_without_a_worker_gets_the_fallback_when_the_wait_is_over(app, client):
    r = chat(client, "What colour is the moon at midnight?")
    body = r.get_json()
    assert r.status_code == 200 and r.headers["x-precache-source"] == "fallback"
    assert body["choices"][0]["message"]["content"] == app.extensions["precache"].settings.fallback_answer
    assert r.headers["x-precache-job-id"]  # queued: the next asker gets the answer


def test_no_store_keeps_nothing_of_a_new_question(app, client):
    ctx = app.extensions["precache"]
    r = chat(client, "Which way do penguins migrate?", headers={"Cache-Control": "no-store"})
    assert r.status_code == 200 and r.headers["x-precache-source"] == "fallback"
    assert ctx.redis.llen(keys.asks()) == 0  # no ask-log entry on its way to SQL either
    ctx.ask_log.flush()
    with ctx.sessions() as session:
        assert session.scalar(select(func.count(Question.id))) == 0
        assert session.scalar(select(func.count(AskLog.id))) == 0
    assert not ctx.redis.keys(f"{keys.PREFIX}:pending:*") and not ctx.redis.keys(f"{keys.PREFIX}:answer:*")


def test_no_store_still_answers_from_the_cache(client, faq):
    r = chat(client, FAQ, headers={"Cache-Control": "no-store"})
    assert r.headers["x-precache-source"] == "exact" and r.get_json()["choices"][0]["message"]["content"] == ANSWER


def test_no_cache_skips_the_cache_and_queues_a_new_answer(app, client, faq):
    ctx = app.extensions["precache"]
    r = chat(client, FAQ, headers={"Cache-Control": "no-cache"})
    assert r.headers["x-precache-source"] == "fallback"  # no worker here: the renewal did not come in time
    job = ctx.jobs.get(r.headers["x-precache-job-id"])
    assert job["kind"] == "renew" and job["sent_queue"] == "quick"


def test_cache_policy_reads_the_request_header():
    assert cache_policy("no-cache") == "no-cache"
    assert cache_policy("max-age=0, No-Store") == "no-store"
    assert cache_policy("") == cache_policy("max-age=60") == "default"


def test_split_pieces_join_to_the_text():
    for text in (ANSWER, "one", "", "two  spaces\nand lines "):
        assert "".join(split(text)) == text and len(split(text)) <= 3


def test_a_non_ascii_question_header_is_percent_encoded(client):
    r = chat(client, "Qu'est-ce qu'un café crème ?")
    assert r.headers["x-precache-question"] == "Qu'est-ce qu'un caf%C3%A9 cr%C3%A8me ?"


def test_a_bad_tenant_header_is_a_400(client):
    r = chat(client, FAQ, headers={"x-precache-tenant": "no spaces"})
    assert r.status_code == 400 and "tenant" in r.get_json()["error"]["message"]
