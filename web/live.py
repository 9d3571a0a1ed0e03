"""The text of a job's answer as the worker generates it (precache.tokens), for the streaming doors."""

from collections.abc import Iterator

from precache import tokens
from precache.jobs import PENDING


def live_text(ctx, job_id: str, deadline: float) -> Iterator[str]:
    """Yield the pieces of a job's answer as they are generated, leading whitespace dropped.

    Stops when the generation returns, when the job leaves pending without a stream (a backend that
    does not stream, a stream expired), or at the monotonic `deadline`.
    """
    started = False
    for piece in tokens.follow(ctx.redis, job_id, deadline):
        if piece is None:
            if not _pending(ctx, job_id):
                return
            continue
        if not started:
            piece = piece.lstrip()
            if not piece:
                continue
            started = True
        yield piece


def _pending(ctx, job_id: str) -> bool:
    record = ctx.jobs.get(job_id)
    return record is not None and record["status"] == PENDING
