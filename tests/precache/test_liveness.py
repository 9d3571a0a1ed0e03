"""Dead workers' jobs sent again at once: real Redis, real broker messages."""

import json

import redis as redis_lib

from precache import keys, liveness
from tests.worker.test_generation import enqueue


def messages(config, queue: str) -> list[str]:
    return [json.loads(m)["headers"]["argsrepr"] for m in redis_lib.Redis.from_url(config["broker_url"]).lrange(queue, 0, -1)]


def test_the_pending_jobs_of_a_dead_worker_are_sent_again_once(ctx, config):
    pending, done = enqueue(ctx, "What is an API?"), enqueue(ctx, "What is a CDN?")
    ctx.jobs.finish(done[0], ctx.ns, "x", answer_id=1)
    for job_id, question_id in (pending, done):
        liveness.hold(ctx.redis, "cpu@a/1", job_id, "quick", question_id)
    assert liveness.recover(ctx.redis, ctx.jobs) == [pending[0]]  # its alive key is gone (never set here): it is dead
    queued = messages(config, "quick")
    assert sum(pending[0] in m for m in queued) == 2  # its first message, and the one sent again
    assert sum(done[0] in m for m in queued) == 1  # a finished job is not sent again
    assert liveness.recover(ctx.redis, ctx.jobs) == []  # claimed once: not sent a second time
    assert not ctx.redis.exists(keys.worker_held("cpu@a/1"))


def test_a_live_worker_and_the_caller_keep_their_jobs(ctx):
    mine, theirs = enqueue(ctx, "What is an API?"), enqueue(ctx, "What is a CDN?")
    liveness.hold(ctx.redis, "cpu@me/1", mine[0], "quick", mine[1])
    liveness.hold(ctx.redis, "cpu@b/2", theirs[0], "quick", theirs[1])
    liveness.heartbeat(ctx.redis, "cpu@b/2", ttl_s=30)
    assert liveness.recover(ctx.redis, ctx.jobs, me="cpu@me/1") == []
    liveness.release(ctx.redis, "cpu@b/2", [theirs[0]])
    liveness.forget(ctx.redis, "cpu@b/2")
    assert not ctx.redis.exists(keys.worker_held("cpu@b/2"), keys.worker_alive("cpu@b/2"))
    # Seen from another process, "me" is a dead worker like any.
    assert liveness.recover(ctx.redis, ctx.jobs) == [mine[0]]
