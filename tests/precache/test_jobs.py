import json
from concurrent.futures import ThreadPoolExecutor

import redis as redis_lib

from tests.conftest import BROKER_URL


def _queued_tasks(queue="quick") -> list[dict]:
    broker = redis_lib.Redis.from_url(BROKER_URL)
    return [json.loads(m) for m in broker.lrange(queue, 0, -1)]


def test_concurrent_askers_share_one_job(ctx):
    created = []

    def ask(_):
        return ctx.jobs.enqueue(ctx.ns, "h" * 64, lambda: created.append(1) or 7)

    with ThreadPoolExecutor(10) as pool:
        results = list(pool.map(ask, range(10)))
    assert len({job_id for job_id, _ in results}) == 1
    assert sorted(joined for _, joined in results) == [False] + [True] * 9
    assert created == [1]
    tasks = _queued_tasks()
    assert len(tasks) == 1
    assert tasks[0]["headers"]["task"] == "worker.tasks.generate_quick_answer"
    assert tasks[0]["headers"]["argsrepr"] == f"[7, '{results[0][0]}']"


def test_finished_job_releases_the_lock_and_wakes_waiters(ctx):
    job_id, _ = ctx.jobs.enqueue(ctx.ns, "a" * 64, lambda: 1)
    ctx.jobs.finish(job_id, ctx.ns, "a" * 64, answer_id=5)
    assert ctx.jobs.wait(job_id, 5) == ctx.jobs.get(job_id)
    assert ctx.jobs.get(job_id)["status"] == "ready"
    again, joined = ctx.jobs.enqueue(ctx.ns, "a" * 64, lambda: 1)
    assert again != job_id and not joined


def test_wait_returns_pending_at_the_deadline(ctx):
    job_id, _ = ctx.jobs.enqueue(ctx.ns, "b" * 64, lambda: 1)
    assert ctx.jobs.wait(job_id, 0.05)["status"] == "pending"


def test_a_record_without_status_is_no_job(ctx):
    ctx.redis.hset("precache:job:partial", "question_id", "1")
    assert ctx.jobs.get("partial") is None


def test_finishing_without_an_answer_is_a_failure(ctx):
    job_id, _ = ctx.jobs.enqueue(ctx.ns, "c" * 64, lambda: 1)
    ctx.jobs.finish(job_id, ctx.ns, "c" * 64)
    record = ctx.jobs.get(job_id)
    assert record["status"] == "failed" and "no answer" in record["error"]


def test_background_work_waits_behind_askers_until_someone_asks(ctx):
    precomputed, _ = ctx.jobs.enqueue(ctx.ns, "d" * 64, lambda: 3, background=True)
    assert [t["headers"]["argsrepr"] for t in _queued_tasks("precompute")] == [f"[3, '{precomputed}']"]
    assert _queued_tasks("quick") == []
    asked, joined = ctx.jobs.enqueue(ctx.ns, "d" * 64, lambda: 3)  # an asker joins it: it is sent on quick too
    again, _ = ctx.jobs.enqueue(ctx.ns, "d" * 64, lambda: 3)  # once
    assert asked == again == precomputed and joined
    assert [t["headers"]["argsrepr"] for t in _queued_tasks("quick")] == [f"[3, '{precomputed}']"]
    ctx.jobs.continue_with("regenerate", 3, precomputed)  # its askers wait: it stays ahead
    assert len(_queued_tasks("quick")) == 2 and len(_queued_tasks("precompute")) == 1


def test_refreshes_and_scheduled_regenerations_go_behind_askers(ctx):
    ctx.jobs.enqueue(ctx.ns, "e" * 64, lambda: 4, kind="refresh")
    ctx.jobs.enqueue(ctx.ns, "f" * 64, lambda: 5, kind="regenerate")
    ctx.jobs.enqueue(ctx.ns, "g" * 64, lambda: 6, kind="detailed")
    assert sorted(t["headers"]["kwargsrepr"] for t in _queued_tasks("precompute")) == ["{'force': True}",
                                                                                        "{'regenerate': True}"]
    ctx.jobs.enqueue(ctx.ns, "e" * 64, lambda: 4, kind="refresh")  # another asker of the stale answer: no resend
    assert len(_queued_tasks("precompute")) == 2
    assert [t["headers"]["task"] for t in _queued_tasks("detailed")] == ["worker.tasks.generate_detailed_answer"]
    assert _queued_tasks("quick") == []


def test_a_task_sent_without_a_queue_goes_where_its_job_kind_would_be_sent(ctx):
    """One place decides queues: Celery's router and the jobs' own sends agree, kind by kind."""
    from precache.queueing import JOB_KINDS, PRECOMPUTE, REPLY

    ctx.jobs  # builds the Celery app the jobs send with
    sent = [(task, kwargs, queue, f"job-{kind}") for kind, (task, kwargs, queue) in JOB_KINDS.items()]
    sent += [(REPLY, {}, "quick", "reply-1"), ("worker.tasks.precompute_faq_answers", {}, PRECOMPUTE, "faq-1"),
             ("worker.tasks.sweep_lost_asks", {}, "housekeeping", "sweep-1")]
    for task, kwargs, _, task_id in sent:
        ctx.celery.send_task(task, args=[1, task_id], kwargs=kwargs, task_id=task_id)
    for task, _, queue, task_id in sent:
        assert task_id in [t["headers"]["id"] for t in _queued_tasks(queue)], (task, queue)
