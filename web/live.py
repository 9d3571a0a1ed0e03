"""The text of a job's answer as the worker generates it (precache.tokens), for the streaming doors."""

import time
from collections.abc import Iterator

from precache import tokens
from precache.context import AppContext
from precache.jobs import PENDING


KEEP_ALIVE = ": keep-alive\n\n"  # an SSE comment: clients ignore it


def live_text(ctx: AppContext, job_id: str, deadline: float, heartbeat_s: float | None = None) -> Iterator[str]:
    """Yield the pieces of a job's answer as they are generated, leading whitespace dropped; with `heartbeat_s`,
    an empty piece after each `heartbeat_s` without one (the caller writes something, and learns whether its
    asker is still there).

    Stops when the generation returns, when the job leaves pending without a stream (a backend that
    does not stream, a stream expired), or at the monotonic `deadline`.
    """
    started, beat = False, time.monotonic()
    for piece in tokens.follow(ctx.redis, job_id, deadline):
        if piece is None:
            record = ctx.jobs.get(job_id)
            if record is None or record["status"] != PENDING:
                return
            if heartbeat_s is not None and time.monotonic() - beat >= heartbeat_s:
                beat = time.monotonic()
                yield ""
            continue
        beat = time.monotonic()
        if not started:
            piece = piece.lstrip()
            if not piece:
                continue
            started = True
        yield piece
