"""GET /v1/ask/stream without a worker: the first event, and how the stream ends when it cannot go on."""

from precache.config import load_settings
from precache.context import Context
from web.stream import _follow


def _events(text: str) -> list[tuple[str, str]]:
    blocks = [b for b in text.split("\n\n") if b.strip()]
    return [tuple(line.split(": ", 1)[1] for line in b.splitlines()) for b in blocks]


def test_a_template_answer_streams_at_once_and_ends(client):
    r = client.get("/v1/ask/stream", query_string={"question": "hello"})
    assert r.status_code == 200 and r.mimetype == "text/event-stream"
    assert [event for event, _ in _events(r.get_data(as_text=True))] == ["answer", "done"]


def test_redis_lost_while_waiting_ends_the_stream_saying_why(config):
    down = Context(load_settings(**config | {"redis_url": "redis://127.0.0.1:1/0"}))
    pending = {"status": "pending", "job_id": "j1", "source": "fallback", "poll": "/v1/jobs/j1"}
    events = _events("".join(_follow(down, "h" * 64, pending, deadline=float("inf"))))
    down.close()
    assert [event for event, _ in events] == ["pending", "done"]
    assert "Redis or the database became unavailable; poll /v1/jobs/j1" in events[-1][1]
