"""An answer's text as the worker generates it, passed to the web through a Redis Stream per job.

The worker appends pieces of text ({"t": ...}, a few per 50 ms at most) and, when the generation
returns, one {"end": finish_reason} ("stop", "length" or "error"). A web process reads the stream
from its start, so a reader that comes late misses nothing. Streams expire after `ttl_s`: the stored
answer, not the stream, is the record. Streaming is best effort: a Redis error loses pieces, never
the answer (it arrives through the job as always).
"""

import logging
import time
from collections.abc import Iterator

import redis

from precache import keys

log = logging.getLogger(__name__)
MAX_ENTRIES = 4096  # a runaway generation cannot grow a stream without bound
TTL_S = 900  # how long a job's stream stays readable after its last piece


class TokenSink:
    """Collect the pieces of a batch's answers and append them to each job's stream, coalesced."""

    def __init__(self, client, job_ids: list[str | None], ttl_s: int = TTL_S, every_s: float = 0.05):
        self.client, self.job_ids, self.ttl_s, self.every_s = client, job_ids, ttl_s, every_s
        self.held: dict[int, list[str]] = {}
        self.flushed = time.monotonic()
        self.broken = False

    def __call__(self, index: int, text: str) -> None:
        """Take a piece of the answer of the batch's chat `index` (a backend's on_token)."""
        if self.job_ids[index] is None:
            return
        self.held.setdefault(index, []).append(text)
        if time.monotonic() - self.flushed >= self.every_s:
            self.flush()

    def flush(self, ends: dict[int, str] | None = None) -> None:
        """Append what is held (and each `ends` entry: the generation of that chat returned)."""
        pipe = self.client.pipeline(transaction=False)
        for index, pieces in self.held.items():
            self._add(pipe, index, {"t": "".join(pieces)})
        for index, reason in (ends or {}).items():
            if self.job_ids[index] is not None:
                self._add(pipe, index, {"end": reason})
        self.held, self.flushed = {}, time.monotonic()
        if self.broken or not len(pipe):
            return
        try:
            pipe.execute()
        except redis.RedisError as exc:  # the answers still arrive through their jobs
            self.broken = True
            log.warning("cannot stream tokens (the answers are stored as usual): %s", exc)

    def end(self, reasons: list[str]) -> None:
        """Mark each generation of the batch as returned, with its finish reason."""
        self.flush(dict(enumerate(reasons)))

    def _add(self, pipe, index: int, fields: dict) -> None:
        name = keys.tokens(self.job_ids[index])
        pipe.xadd(name, fields, maxlen=MAX_ENTRIES, approximate=True)
        pipe.expire(name, self.ttl_s)


def follow(client, job_id: str, until: float, block_ms: int = 1000) -> Iterator[str | None]:
    """Yield the pieces of a job's answer as they arrive; yield None after each `block_ms` without any
    (the caller checks the job, or its asker); stop at the stream's end or at the monotonic time `until`."""
    name, last = keys.tokens(job_id), "0-0"
    while (left := until - time.monotonic()) > 0:
        reply = client.xread({name: last}, count=256, block=max(1, int(min(left, block_ms / 1000) * 1000)))
        if not reply:
            yield None
            continue
        for entry_id, fields in reply[0][1]:
            last = entry_id
            if b"end" in fields:
                return
            yield fields[b"t"].decode("utf-8", "replace")
