"""A job's answer streamed through Redis as it is generated: written coalesced, read from the start."""

import threading
import time

import redis as redis_lib

from precache import keys
from precache.tokens import TokenSink, follow


def test_pieces_written_while_a_reader_waits_arrive_in_order_and_the_end_stops_it(redis_client):
    sink = TokenSink(redis_client, ["job-a", None], every_s=0.0)
    words = ["The ", "answer ", "is ", "forty", "-two."]

    def generate():
        for word in words:
            time.sleep(0.05)
            sink(0, word)
            sink(1, "not streamed")  # a background job of the batch: no stream
        sink.end(["stop", "stop"])

    writer = threading.Thread(target=generate)
    writer.start()
    read = list(follow(redis_client, "job-a", time.monotonic() + 30, block_ms=100))
    writer.join()
    assert "".join(p for p in read if p is not None) == "".join(words)
    assert len([p for p in read if p is not None]) >= 3
    assert not redis_client.exists(keys.tokens("None"))
    assert 0 < redis_client.ttl(keys.tokens("job-a")) <= 900


def test_a_late_reader_gets_the_whole_answer_and_a_coalescing_sink_holds_nothing_back(redis_client):
    sink = TokenSink(redis_client, ["job-b"], every_s=3600)  # nothing flushed until the end
    for piece in ("a", "b", "c"):
        sink(0, piece)
    assert not redis_client.exists(keys.tokens("job-b"))
    sink.end(["length"])
    assert list(follow(redis_client, "job-b", time.monotonic() + 5)) == ["abc"]


def test_a_reader_stops_at_its_deadline_saying_nothing_came(redis_client):
    assert list(follow(redis_client, "job-none", time.monotonic() + 0.3, block_ms=100))[:1] == [None]


def test_redis_gone_loses_the_stream_not_the_generation():
    down = redis_lib.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    sink = TokenSink(down, ["job-c"], every_s=0.0)
    sink(0, "piece")  # logged once, then nothing more is tried
    sink.end(["stop"])
    assert sink.broken
