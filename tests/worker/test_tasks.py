"""The worker's Celery tasks (worker/tasks.py): which kind of job a message runs, every scheduled job a task,
a second copy of a scheduled job doing nothing, a reply run in the worker's own context."""

import pytest

from precache import keys
from precache.queueing import GENERATE_DETAILED, GENERATE_QUICK, REPLY, SCHEDULE
from tests.worker.test_runtime import environment  # noqa: F401 - fixture: settings from the environment
from worker import app, runtime, tasks


@pytest.mark.parametrize("task, kwargs, kind", [
    (GENERATE_QUICK, {}, "quick"),
    (GENERATE_QUICK, {"force": True}, "refresh"),
    (GENERATE_QUICK, {"regenerate": True}, "regenerate"),
    (GENERATE_QUICK, {"renew": True, "tenant": "acme"}, "renew"),
    (GENERATE_DETAILED, {"force": True}, "detailed"),
])
def test_the_kind_of_job_a_message_runs(task, kwargs, kind):
    assert tasks.job_kind(task, kwargs) == kind


def test_every_task_the_web_and_beat_send_is_a_task_of_the_worker():
    assert {GENERATE_QUICK, GENERATE_DETAILED, REPLY, *SCHEDULE} <= set(app.tasks)


def test_a_second_copy_of_a_scheduled_job_does_nothing_while_the_first_runs(environment):
    ctx = runtime.context()
    assert tasks.prune_ask_log() == {"pruned": 0, "feedback": 0, "learned": 0, "questions": 0}
    ctx.redis.set(keys.scheduled_lock("prune"), "the first copy")
    assert tasks.prune_ask_log() == {"skipped": "prune is already running"}
    assert ctx.redis.get(keys.scheduled_lock("prune")) == b"the first copy"  # the first copy's lock is left


def test_a_reply_runs_in_the_worker_context_of_its_tenant(environment, ctx):
    reply_id = ctx.for_tenant("acme").jobs.send_reply("poem", "roses")  # sent by the web
    assert tasks.reply(reply_id, "poem", "roses", tenant="acme") == {"failed": "poem"}
    record = ctx.jobs.get(reply_id)
    assert record["status"] == "failed" and "unknown reply kind 'poem'" in record["error"]
