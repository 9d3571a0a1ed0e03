"""Celery tasks: thin wrappers over plain functions.

The generation tasks are batch tasks (celery-batches): the worker buffers their messages and runs
each task once per batch of up to PRECACHE_LLM_MAX_BATCH requests, or after PRECACHE_LLM_BATCH_WAIT_MS.
Messages are acknowledged only after the batch returns (acks_late), so a worker killed mid-batch
loses none of them: the broker redelivers them (docs/generation.md, "Batching"). Quick messages that
arrive while a quick batch is generated join it at its next decoding step, on a backend that can
(worker/joining.py).
"""

import collections
import logging
import threading
import time

import redis
from celery_batches import Batches, SimpleRequest

from precache import broker, liveness
from precache.context import AppContext
from precache.semantic.embedders import embedder_for
from precache.precompute import queue_unanswered
from precache.recovery import sweep
from precache.queueing import (GENERATE_DETAILED, GENERATE_QUICK, GENERATION_TIME_LIMIT_S, HOUSEKEEPING_TIME_LIMIT_S,
                               QUICK, job_kind)
from worker import app, joining, replies, runtime, scheduled
from worker.generation import JobRequest, answer_questions

log = logging.getLogger(__name__)
# Batch tasks in priority order: whichever buffer triggers a flush, the quick one is generated first.
PRIORITY = (GENERATE_QUICK, GENERATE_DETAILED)
# Batches handed to the pool and not started yet, per task: quick ones waiting make background work yield.
_waiting: collections.Counter = collections.Counter()
_waiting_lock = threading.Lock()


class GenerationBatches(Batches):
    """A batch task sized from the settings at worker start, flushed in priority order."""

    abstract = True

    def Strategy(self, task, app, consumer):
        settings = runtime.context().settings
        self.flush_every = settings.llm_max_batch
        self.flush_interval = settings.llm_batch_wait_ms / 1000
        return super().Strategy(task, app, consumer)

    def _do_flush(self) -> None:
        for name in PRIORITY:
            Batches._do_flush(self.app.tasks[name])

    def flush(self, requests):
        """Hand a batch to the pool (its one thread may be busy): counted until the batch starts. Quick
        messages join the running quick batch instead, when one runs that takes them."""
        if self.name == GENERATE_QUICK and joining.quick.offer(list(requests)):
            log.info("%d quick tasks join the running batch", len(requests))
            return None
        with _waiting_lock:
            _waiting[self.name] += 1
        return super().flush(requests)


def _run_batch(task, requests) -> dict:
    """Answer a batch of job messages; report each job to Flower as its own task."""
    with _waiting_lock:
        _waiting[task.name] = max(0, _waiting[task.name] - 1)
    jobs = [_job(task, r) for r in requests]
    worker = requests[0].hostname or ""
    log.info("%s: a batch of %d tasks: %s", task.name, len(requests), " ".join(r.id for r in requests))
    _events(task, requests, "task-started")
    backend = runtime.backend()
    joined, messages = [], []  # quick messages that joined while it ran (worker/joining.py)

    def joiners(room: int) -> list[JobRequest]:
        raw = joining.quick.take(room)
        if not raw:
            return []
        taken = [SimpleRequest.from_request(r) for r in raw]
        messages.extend(raw)
        joined.extend(taken)
        _events(task, taken, "task-started")
        return [_job(task, r) for r in taken]

    takes = task.name == GENERATE_QUICK and backend.joins
    if takes:
        joining.quick.open(hurry=backend.hurry)
    started = time.monotonic()
    try:
        outcomes = answer_questions(runtime.context(), backend, jobs, worker=worker,
                                    askers_waiting=lambda: askers_waiting(task.app), on_stuck=runtime.discard_backend,
                                    joiners=joiners if takes else None)
    finally:  # released however the batch ended: a held job is only a dead worker's to resend
        if takes and (left := joining.quick.close()):
            task.flush(left)  # offered too late to join: a batch of their own
        liveness_release(runtime.context(), worker, [job.job_id for job in jobs] + [r.args[1] for r in joined])
    took = time.monotonic() - started  # each job of the batch took the batch's time, as Flower shows it
    _report(task, requests + joined, outcomes, took)
    for message in messages:  # settled: acknowledged as the batch's own messages are when it returns
        message.acknowledge()
    return {"jobs": len(jobs) + len(joined), "failed": sum(isinstance(o, Exception) for o in outcomes)}


def _job(task, request) -> JobRequest:
    return JobRequest(*request.args, kind=job_kind(task.name, request.kwargs),
                      request_id=(request.request_dict or {}).get("request_id") or "-",
                      tenant=request.kwargs.get("tenant", ""))


def _report(task, requests, outcomes: list, took: float) -> None:
    """Tell Flower how each job of the batch ended."""
    for request, outcome in zip(requests, outcomes, strict=True):
        if isinstance(outcome, Exception):
            _events(task, [request], "task-failed", exception=repr(outcome), runtime=took)
        else:
            _events(task, [request], "task-succeeded", runtime=took,
                    result=repr({"answer_id": outcome and outcome["answer_id"]}))


def askers_waiting(app) -> bool:
    """Tell whether askers' quick jobs wait: received by this worker (buffered), or queued in the broker."""
    if _waiting[GENERATE_QUICK] or app.tasks[GENERATE_QUICK]._buffer.qsize():
        return True  # a quick batch handed to the pool, or requests buffered for the next one
    return bool(broker.depths(runtime.context().settings.broker_url, [QUICK])[QUICK])


def liveness_release(ctx: AppContext, hostname: str, job_ids: list[str]) -> None:
    """Forget the batch's jobs as held by this worker process (they are finished, or sent again)."""
    try:
        liveness.release(ctx.redis, liveness.worker_id(hostname), job_ids)
    except redis.RedisError as exc:  # a dead-worker check would send them again: harmless, they are done
        log.warning("cannot forget the jobs of a finished batch: %s", exc)


def _events(task, requests, kind: str, **fields) -> None:
    if not requests or not task.app.conf.worker_send_task_events:
        return
    with task.app.events.default_dispatcher(hostname=requests[0].hostname) as dispatcher:
        for request in requests:
            dispatcher.send(kind, uuid=request.id, **fields)


@app.task(base=GenerationBatches, bind=True, acks_late=True, time_limit=GENERATION_TIME_LIMIT_S)
def generate_quick_answer(self, requests) -> dict:
    """Generate and store quick answers; args (question_id, job_id); kwargs force (refresh one past its TTL),
    regenerate (one whose answers failed the quality gate: detailed settings), renew (an asker's no-cache:
    the new answer replaces the cached ones), tenant."""
    return _run_batch(self, requests)


@app.task(base=GenerationBatches, bind=True, acks_late=True, time_limit=GENERATION_TIME_LIMIT_S)
def generate_detailed_answer(self, requests) -> dict:
    """Generate detailed answers that replace the quick ones when their quality is as high."""
    return _run_batch(self, requests)


@app.task(acks_late=True, time_limit=GENERATION_TIME_LIMIT_S)
def reply(reply_id: str, kind: str, payload, tenant: str = "") -> dict:
    """A short generation an asker waits on (a follow-up made standalone, an answer kept nowhere)."""
    return replies.reply(runtime.context().for_tenant(tenant), runtime.backend(), reply_id, kind, payload,
                         on_timeout=runtime.discard_backend)


def _scheduled(name: str, job) -> dict:
    """Run a scheduled job unless another copy of it is running (then report that and do nothing)."""
    ctx = runtime.context()
    with scheduled.exclusive(ctx, name, HOUSEKEEPING_TIME_LIMIT_S) as held:
        return job(ctx) if held else {"skipped": f"{name} is already running"}


@app.task(acks_late=True, time_limit=HOUSEKEEPING_TIME_LIMIT_S)
def precompute_faq_answers() -> dict:
    """Queue generation for every FAQ question without an answer (each tenant's too)."""
    return _scheduled("precompute", lambda ctx: scheduled.each_tenant(
        ctx, lambda tctx: {"queued": len(queue_unanswered(tctx))}))


@app.task(acks_late=True, time_limit=HOUSEKEEPING_TIME_LIMIT_S)
def predictive_precompute() -> dict:
    """Answer the most-missed clusters of paraphrased questions before the next asker."""
    return _scheduled("predictive", lambda ctx: scheduled.predictive_precompute(
        ctx, embedder_for(ctx.settings, threads=None)))


@app.task(acks_late=True, time_limit=HOUSEKEEPING_TIME_LIMIT_S)
def refresh_stale_answers() -> dict:
    """Regenerate answers past their TTL."""
    return _scheduled("refresh", scheduled.refresh_stale)


@app.task(acks_late=True, time_limit=HOUSEKEEPING_TIME_LIMIT_S)
def regenerate_low_quality_answers() -> dict:
    """Regenerate answers that failed the quality gate (with the detailed settings, bounded tries)."""
    return _scheduled("regenerate", scheduled.regenerate_low_quality)


@app.task(acks_late=True, time_limit=HOUSEKEEPING_TIME_LIMIT_S)
def prune_ask_log() -> dict:
    """Delete ask-log rows past their retention, then what askers grew and nothing uses any more."""
    return _scheduled("prune", lambda ctx: scheduled.prune_ask_log(ctx) | scheduled.prune_unused(ctx))


@app.task(acks_late=True, time_limit=HOUSEKEEPING_TIME_LIMIT_S)
def reembed_questions() -> dict:
    """Embed again, under the configured embedder, what was embedded under another (a slice per run)."""
    from precache.semantic.reembed import reembed

    return _scheduled("reembed", lambda ctx: reembed(ctx, embedder_for(ctx.settings, threads=None),
                                                      budget_s=HOUSEKEEPING_TIME_LIMIT_S / 2))


@app.task(acks_late=True, time_limit=HOUSEKEEPING_TIME_LIMIT_S)
def sweep_lost_asks() -> dict:
    """Write asks kept in Redis during a database outage to SQL; queue unanswered questions without a job;
    send again the jobs whose message the broker lost with a dying worker."""
    return sweep(runtime.context())
