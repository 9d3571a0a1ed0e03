"""A generation worker's heartbeat and held jobs (worker/liveness.py), through its Celery signal handlers,
on the test's Redis and database."""

import threading
from types import SimpleNamespace

import pytest

from precache import keys, liveness as shared
from precache.queueing import GENERATE_DETAILED, GENERATE_QUICK
from tests.worker.test_generation import enqueue
from tests.worker.test_runtime import environment  # noqa: F401 - fixture: settings from the environment
from worker import liveness, runtime

HOST = "cpu@test-host"


def held(worker: str) -> dict:
    return {k.decode(): v for k, v in runtime.context().redis.hgetall(keys.worker_held(worker)).items()}


def test_each_generation_message_received_is_recorded_as_held(environment):
    worker = shared.worker_id(HOST)
    sender = SimpleNamespace(hostname=HOST)
    liveness.hold_job(sender, SimpleNamespace(name=GENERATE_QUICK, args=[7, "job-q"], kwargs={"regenerate": True}))
    liveness.hold_job(sender, SimpleNamespace(name=GENERATE_DETAILED, args=[8, "job-d"], kwargs={"tenant": "acme"}))
    liveness.hold_job(sender, SimpleNamespace(name="worker.tasks.prune", args=[], kwargs={}))
    recorded = held(worker)
    assert set(recorded) == {"job-q", "job-d"}  # other tasks are not generation jobs
    assert b'"kind": "regenerate"' in recorded["job-q"] and b'"tenant": "acme"' in recorded["job-d"]


def test_a_beat_says_this_worker_is_alive_and_claims_a_dead_workers_jobs(environment, ctx):
    job_id, question_id = enqueue(ctx, "What is an API?")  # the web's context, on the same Redis
    ctx.jobs.finish(job_id, ctx.ns, "x", answer_id=1)  # finished: claimed, nothing to send again
    shared.hold(ctx.redis, "cpu@gone/1", job_id, "quick", question_id)
    stop = threading.Event()
    stop.set()  # one beat, then return
    liveness.beat("cpu@me/1", stop)
    assert ctx.redis.exists(keys.worker_alive("cpu@me/1"))
    assert ctx.redis.ttl(keys.worker_alive("cpu@me/1")) <= ctx.settings.worker_dead_after_s
    assert not ctx.redis.exists(keys.worker_held("cpu@gone/1"), keys.worker_claimed("cpu@gone/1"))


def test_a_clean_stop_forgets_the_worker(environment):
    ctx = runtime.context()
    worker = shared.worker_id(HOST)
    liveness.hold_job(SimpleNamespace(hostname=HOST), SimpleNamespace(name=GENERATE_QUICK, args=[7, "job-q"],
                                                                      kwargs={}))
    shared.heartbeat(ctx.redis, worker, ttl_s=30)
    stop = threading.Event()
    liveness._beating[worker] = stop
    liveness.stop_heartbeat(None)
    assert stop.is_set() and worker not in liveness._beating
    assert not ctx.redis.exists(keys.worker_alive(worker), keys.worker_held(worker))


@pytest.mark.parametrize("kwargs, kind", [({}, "quick"), ({"force": True}, "refresh"), ({"renew": True}, "renew")])
def test_the_kind_held_is_the_kind_of_job_the_message_runs(environment, kwargs, kind):
    liveness.hold_job(SimpleNamespace(hostname=HOST), SimpleNamespace(name=GENERATE_QUICK, args=[7, "job-q"],
                                                                      kwargs=kwargs))
    assert f'"kind": "{kind}"'.encode() in held(shared.worker_id(HOST))["job-q"]
