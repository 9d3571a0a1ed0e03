"""Per-client caps, on by default: open streams, and new questions (generation work) per minute.

A client is who web/identity.py says asks: the client's address, or the asker the calling app vouches for.
Neither cap touches what is already cached: hits, and joins of a question already being generated, are free.
Both are counted in Redis, so every web process sees the same numbers; with Redis unreachable they let the
request through (the ladder has its own answer to a Redis outage).
"""

import logging
import time
import uuid
from collections.abc import Callable
from contextlib import contextmanager

import redis

from precache import keys
from web.errors import ApiError

log = logging.getLogger(__name__)


def take_new_question(client, asker: str, per_minute: int, joining: Callable[[], object] = lambda: False) -> None:
    """Count a new question of `asker`; raise a 429 past `per_minute` this minute. 0 or no asker: no cap.
    `joining()` true: the work is being done already (asked only when the cap applies), nothing is counted."""
    if per_minute <= 0 or not asker or joining():
        return
    now = time.time()
    name = keys.new_questions(asker, int(now // 60))
    try:
        pipe = client.pipeline(transaction=True)
        pipe.incr(name)
        pipe.expire(name, 120)
        count = pipe.execute()[0]
    except redis.RedisError as exc:
        log.warning("cannot count new questions per client, not capping: %s", exc)
        return
    if count > per_minute:
        wait = 60 - int(now % 60)
        raise ApiError(429, "too_many_new_questions",
                       f"this client asked {per_minute} new questions this minute (PRECACHE_NEW_QUESTIONS_PER_"
                       f"MINUTE); cached questions are still answered; ask new ones again in {wait} s",
                       retry_after=wait)


@contextmanager
def stream_open(client, asker: str, most: int, longest_s: float):
    """Take one of `asker`'s `most` open streams for a view that may answer with a stream; raise a 429 when
    all are taken. 0 or no asker: no cap.

    Yields `hand_over(response)`: the stream is given back when that response closes (a stream that ends,
    a client that goes away). A view that leaves without handing a response over gives it back at once.
    Each stream is scored by when it ends at the latest, so a process that dies holding streams frees
    them by then.
    """
    release = _take_stream(client, asker, most, longest_s)
    handed = []

    def hand_over(response):
        handed.append(response)
        response.call_on_close(release)
        return response

    try:
        yield hand_over
    finally:
        if not handed:
            release()


def _take_stream(client, asker: str, most: int, longest_s: float) -> Callable[[], None]:
    """Take a stream slot and return what gives it back."""
    if most <= 0 or not asker:
        return lambda: None
    name, slot, now = keys.open_streams(asker), uuid.uuid4().hex, time.time()
    try:
        pipe = client.pipeline(transaction=True)
        pipe.zremrangebyscore(name, "-inf", now)
        pipe.zadd(name, {slot: now + longest_s + 60})
        pipe.zcard(name)
        pipe.expire(name, int(longest_s) + 120)
        held = pipe.execute()[2]
    except redis.RedisError as exc:
        log.warning("cannot count open streams per client, not capping: %s", exc)
        return lambda: None
    if held > most:
        _release(client, name, slot)
        raise ApiError(429, "too_many_streams",
                       f"this client has {most} streams open (PRECACHE_STREAMS_PER_CLIENT); close one, or poll "
                       "/v1/jobs/<id> instead", retry_after=5)
    return lambda: _release(client, name, slot)


def _release(client, name: str, slot: str) -> None:
    try:
        client.zrem(name, slot)
    except redis.RedisError as exc:  # the slot lapses at its score
        log.warning("cannot release a stream slot: %s", exc)
