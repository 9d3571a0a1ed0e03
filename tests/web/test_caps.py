"""Per-client caps (web/caps.py): open streams, and new questions per minute; no worker runs, so misses wait."""

import threading

import pytest

from web import create_app

ELSEWHERE = {"REMOTE_ADDR": "10.0.0.2"}


class Held:
    """A streamed response held open in a thread of its own, as a server holds it, until `close()`."""

    def __init__(self, client, method: str, path: str, **kwargs):
        self.opened, self.done = threading.Event(), threading.Event()
        self.thread = threading.Thread(target=self._hold, args=(client, method, path, kwargs), daemon=True)
        self.thread.start()
        assert self.opened.wait(60)

    def _hold(self, client, method, path, kwargs):
        self.response = client.open(path, method=method, buffered=False, **kwargs)
        self.status_code, self.headers = self.response.status_code, self.response.headers
        self.json = self.response.json if self.response.is_json else None
        if self.status_code == 200:
            next(iter(self.response.response))  # the first event is sent
        self.opened.set()
        self.done.wait(60)
        self.response.close()

    def close(self) -> None:
        self.done.set()
        self.thread.join(60)


@pytest.fixture
def capped(config):
    apps = []

    def make(**caps):
        app = create_app(config | {"stream_max_s": 30, "chat_wait_ms": 30000} | caps)
        apps.append(app)
        return app.test_client()

    yield make
    for app in apps:
        app.extensions["precache"].close()


def _ask(client, question: str, **kwargs):
    return client.post("/v1/ask", json={"question": question, "wait_ms": 0}, **kwargs)


def test_past_the_new_questions_cap_a_client_gets_429_and_still_gets_cached_answers(capped):
    client = capped(new_questions_per_minute=3)
    assert [_ask(client, f"How do I configure widget number {n}?").status_code for n in range(3)] == [202] * 3
    r = _ask(client, "How do I configure widget number 4?")
    assert r.status_code == 429 and r.json["error"]["code"] == "too_many_new_questions"
    assert "3 new questions this minute" in r.json["error"]["message"]
    assert 0 < int(r.headers["Retry-After"]) <= 60
    # What costs no new generation is still served: a template, and a question already being generated.
    assert _ask(client, "hello").status_code == 200
    assert _ask(client, "How do I configure widget number 0?").status_code == 202
    # Other clients have their own count.
    assert _ask(client, "How do I configure widget number 4?", environ_base=ELSEWHERE).status_code == 202


def test_no_store_and_no_cache_chats_count_as_new_questions(capped):
    client = capped(new_questions_per_minute=2)

    def chat(question: str, policy: str):
        return client.post("/v1/chat/completions", headers={"Cache-Control": policy}, json={
            "model": "m", "messages": [{"role": "user", "content": question}], "stream": True})

    assert chat("What is the refund window for gadgets?", "no-store").status_code == 200
    assert chat("What is the warranty for gadgets?", "no-cache").status_code == 200
    r = chat("What is the shipping time for gadgets?", "no-store")
    assert r.status_code == 429 and r.json["error"]["type"] == "rate_limit_error"
    assert chat("What is the shipping time for gadgets?", "no-cache").status_code == 429


def test_past_the_streams_cap_a_client_gets_429_until_one_of_its_streams_closes(capped):
    client = capped(streams_per_client=2)

    def stream(question: str, **kwargs):
        return Held(client, "GET", "/v1/ask/stream", query_string={"question": question}, **kwargs)

    held = [stream(f"Which plan includes feature {n}?") for n in range(2)]
    assert [r.status_code for r in held] == [200, 200]
    refused = stream("Which plan includes feature 2?")
    assert refused.status_code == 429 and refused.json["error"]["code"] == "too_many_streams"
    assert "PRECACHE_STREAMS_PER_CLIENT" in refused.json["error"]["message"] and refused.headers["Retry-After"]
    other = stream("Which plan includes feature 2?", environ_base=ELSEWHERE)
    assert other.status_code == 200  # another client is not held back
    held[0].close()  # the asker goes away: its stream is given back
    again = stream("Which plan includes feature 3?")
    assert again.status_code == 200
    for response in (held[1], refused, other, again):
        response.close()


def test_streamed_chats_share_the_cap_and_a_refused_ask_gives_its_stream_back(capped):
    client = capped(streams_per_client=1, new_questions_per_minute=1)

    def chat(question: str):
        return Held(client, "POST", "/v1/chat/completions", json={
            "model": "m", "messages": [{"role": "user", "content": question}], "stream": True})

    assert _ask(client, "Where is my parcel number 1?").status_code == 202  # the one new question
    refused = chat("Where is my parcel number 2?")
    assert refused.status_code == 429 and refused.json["error"]["code"] == "too_many_new_questions"
    first = chat("hello")  # the stream the refused ask took was given back
    assert first.status_code == 200
    second = chat("hello")
    assert second.status_code == 429 and second.json["error"]["code"] == "too_many_streams"
    for response in (refused, first, second):
        response.close()


def test_without_redis_the_caps_let_requests_through(capped):
    client = capped(streams_per_client=1, new_questions_per_minute=1, redis_url="redis://127.0.0.1:1/0",
                    broker_url="redis://127.0.0.1:1/1")
    streams = [Held(client, "GET", "/v1/ask/stream", query_string={"question": "hello"}) for _ in range(2)]
    assert [r.status_code for r in streams] == [200, 200]
    for response in streams:
        response.close()
