"""The text of a job's answer as the worker generates it (precache.tokens), for the streaming doors."""

from collections.abc import Iterator

from precache import tokens
from precache.context import AppContext
from precache.jobs import PENDING


def live_text(ctx: AppContext, job_id: str, deadline: float) -> Iterator[str]:
    """Yield the pieces of a job's answer as they are generated, leading whitespace dropped.

    Stops when the generation returns, when the job leaves pending without a stream (a backend that
    does not stream, a stream expired), or at the monotonic `deadline`.
    """
    started = False
    for piece in tokens.follow(ctx.redis, job_id, deadline):
        if piece is None:
            record = ctx.jobs.get(job_id)
            if record is None or record["status"] != PENDING:
                return
            continue
        if not started:
            piece = piece.lstrip()
            if not piece:
                continue
            started = True
        yield piece
