"""The text of a job's answer as the worker generates it (web/live.py), read from a real Redis Stream."""

import time

from precache.tokens import TokenSink
from tests.worker.test_generation import enqueue
from web.live import live_text


def test_the_pieces_come_in_order_without_the_leading_whitespace_and_stop_at_the_end(ctx):
    job_id, _ = enqueue(ctx, "What is an API?")
    sink = TokenSink(ctx.redis, [job_id], every_s=0.0)
    for piece in ("  ", "\n An API", " is a contract", "."):
        sink(0, piece)
    sink.end(["stop"])
    assert list(live_text(ctx, job_id, time.monotonic() + 30)) == ["An API", " is a contract", "."]


def test_a_job_finished_without_a_stream_gives_no_text(ctx):
    job_id, _ = enqueue(ctx, "What is an API?")
    ctx.jobs.finish(job_id, ctx.ns, "x", answer_id=1)  # a backend that does not stream
    assert list(live_text(ctx, job_id, time.monotonic() + 30)) == []


def test_a_pending_job_without_pieces_gives_no_text_by_the_deadline(ctx):
    job_id, _ = enqueue(ctx, "What is an API?")
    assert list(live_text(ctx, job_id, time.monotonic() + 0.5)) == []
    assert ctx.jobs.get(job_id)["status"] == "pending"
