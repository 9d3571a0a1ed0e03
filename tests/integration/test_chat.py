"""The OpenAI-compatible door driven by the official clients (openai, LangChain's ChatOpenAI) against
gunicorn and a real worker running SmolLM2, on SQLite."""

import json

import openai
import pytest
import requests
from langchain_openai import ChatOpenAI

from tests.integration.conftest import running_stack

pytestmark = pytest.mark.integration

FAQ = "How do I reset my password?"
ANSWER = "Open Settings, choose Security, then Reset password. The link arrives by email within a minute."


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("chat")
    # Answers long enough to stream in many pieces (about a second of generation each).
    with running_stack("sqlite", tmp, llm_max_tokens_quick=64) as running:
        faq = tmp / "faq.jsonl"
        faq.write_text(json.dumps({"question": FAQ, "answer": ANSWER}))
        assert running.cli("faq", "import", str(faq)).returncode == 0
        yield running


@pytest.fixture(scope="module")
def client(stack):
    return openai.OpenAI(base_url=f"{stack.base_url}/v1", api_key="unused", timeout=300, max_retries=0)


def ask(client, *messages, **options):
    """Return (the parsed completion, the response headers)."""
    turns = [{"role": "user", "content": m} if isinstance(m, str) else m for m in messages]
    raw = client.chat.completions.with_raw_response.create(model="precache", messages=turns, **options)
    return raw.parse(), raw.headers


def test_the_client_lists_the_model(client):
    assert [m.id for m in client.models.list()] == ["precache"]


def test_a_curated_faq_question_is_a_chat_completion_and_a_stream_of_the_same_text(client):
    completion, headers = ask(client, FAQ)
    assert completion.choices[0].message.content == ANSWER and completion.choices[0].finish_reason == "stop"
    assert headers["x-precache-source"] == "exact" and headers["x-precache-answer-id"]
    stream = client.chat.completions.create(model="precache", messages=[{"role": "user", "content": FAQ}],
                                            stream=True)
    deltas = [c.choices[0].delta.content for c in stream if c.choices and c.choices[0].delta.content]
    assert "".join(deltas) == ANSWER


def test_a_new_question_is_answered_with_the_generated_text(stack, client):
    completion, headers = ask(client, "What does a database index do?")
    assert headers["x-precache-source"] == "generated" and completion.choices[0].message.content.strip()
    stored = requests.get(f"{stack.base_url}/v1/answers/{headers['x-precache-answer-id']}", timeout=10).json()
    assert stored["answer"] == completion.choices[0].message.content
    assert stack.ask("What does a database index do?").json()["source"] == "exact"  # the next asker: instantly


def test_a_new_question_streams_token_by_token_while_it_is_generated(stack, client):
    question = "Why do cats purr when they are happy?"
    raw = client.chat.completions.with_raw_response.create(
        model="precache", messages=[{"role": "user", "content": question}], stream=True)
    job_id = raw.headers["x-precache-job-id"]
    deltas, pending_at_first = [], None
    for chunk in raw.parse():
        if chunk.choices and chunk.choices[0].delta.content:
            if pending_at_first is None:  # the answer is not stored yet: it is still being generated
                pending_at_first = requests.get(f"{stack.base_url}/v1/jobs/{job_id}", timeout=10).json()["status"]
            deltas.append(chunk.choices[0].delta.content)
    assert pending_at_first == "pending" and len(deltas) >= 3, deltas
    stored = stack.wait_job(job_id)
    assert "".join(deltas).startswith(stored["answer"])  # the stored answer: its complete sentences


def test_a_follow_up_after_an_faq_turn_is_answered_as_a_standalone_question(client):
    completion, headers = ask(client, FAQ, {"role": "assistant", "content": ANSWER}, "How long does that take?")
    question = headers["x-precache-question"]
    assert question != "How long does that take?" and len(question.split()) >= 4, question
    assert any(word in question.lower() for word in ("password", "reset")), question
    assert completion.choices[0].message.content.strip()


def test_no_store_answers_and_keeps_nothing(stack, client):
    question = "What is the tallest tree species on Earth?"
    completion, headers = ask(client, question, extra_headers={"Cache-Control": "no-store"})
    assert headers["x-precache-source"] == "generated" and completion.choices[0].message.content.strip()
    assert question not in stack.quick_answers()
    text = completion.choices[0].message.content.strip()
    assert not kept_in_redis(stack.redis, question, text)  # nor its reply record, nor its token stream
    stream = client.chat.completions.create(model="precache", messages=[{"role": "user", "content": question}],
                                            stream=True, extra_headers={"Cache-Control": "no-store"})
    streamed = "".join(c.choices[0].delta.content or "" for c in stream if c.choices).strip()
    assert streamed and not kept_in_redis(stack.redis, question, streamed)
    assert stack.ask(question).status_code == 202  # never cached: the next asker is a miss


def kept_in_redis(client, *texts: str) -> list[str]:
    """Return the keys of the Redis database whose value holds any of `texts`."""
    found = []
    for name in client.scan_iter(count=1000):
        kind = client.type(name).decode()
        if kind == "string":
            values = [client.get(name)]
        elif kind == "hash":
            values = list(client.hvals(name))
        elif kind == "list":
            values = client.lrange(name, 0, -1)
        elif kind == "stream":
            values = [b"".join(v for _, fields in client.xrange(name) for v in fields.values())]  # pieces joined
        else:
            values = [*client.smembers(name)] if kind == "set" else [m for m, _ in client.zrange(name, 0, -1,
                                                                                                withscores=True)]
        blob = b"\n".join(v for v in values if v).decode("utf-8", "replace")
        if any(text in blob for text in texts):
            found.append(name.decode())
    return found


def test_no_cache_regenerates_and_replaces_the_answer(stack, client):
    first, before = ask(client, "What is a VPN used for?")
    again, after = ask(client, "What is a VPN used for?", extra_headers={"Cache-Control": "no-cache"})
    assert before["x-precache-source"] == after["x-precache-source"] == "generated"
    assert after["x-precache-answer-id"] != before["x-precache-answer-id"]
    # The old answer is served no more (the new one is, or the detailed answer that follows it).
    assert stack.ask("What is a VPN used for?").json()["answer_id"] != int(before["x-precache-answer-id"])


@pytest.mark.parametrize("options, field", [
    ({"n": 2}, "n"),
    ({"tools": [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]}, "tools"),
    ({"response_format": {"type": "json_object"}}, "response_format"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}]},
     "messages.0.content.0.type"),
    ({"messages": [{"role": "user", "content": "   "}]}, "messages.0.content"),
])
def test_bad_bodies_raise_the_clients_bad_request_error_naming_the_field(client, options, field):
    options = {"messages": [{"role": "user", "content": FAQ}], **options}
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="precache", **options)
    assert caught.value.status_code == 400 and field in caught.value.message


def test_langchain_chat_openai_invokes_and_streams(stack):
    llm = ChatOpenAI(base_url=f"{stack.base_url}/v1", api_key="unused", model="precache", timeout=300, max_retries=0)
    assert llm.invoke(FAQ).content == ANSWER
    pieces = [chunk.content for chunk in llm.stream(FAQ)]
    assert "".join(pieces) == ANSWER and len([p for p in pieces if p]) >= 2
