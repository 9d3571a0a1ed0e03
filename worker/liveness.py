"""A generation worker process says it is alive, records the jobs it holds, and recovers dead workers'.

See precache/liveness.py. The heartbeat runs in a thread of its own, so it goes on while the pool
thread is in the model; Celery's signals record each generation message as it is received.
"""

import logging
import threading

import redis
from celery import signals

from precache import liveness
from precache.queueing import GENERATION_QUEUES, GENERATION_TASKS, job_kind
from worker import runtime

log = logging.getLogger(__name__)
_beating: dict[str, threading.Event] = {}  # worker id -> the event that stops its heartbeat


def beat(worker: str, stop: threading.Event) -> None:
    """Renew this worker's alive key and send again the jobs of dead workers, until `stop` is set."""
    ctx = runtime.context()
    settings = ctx.settings
    while True:
        try:
            liveness.heartbeat(ctx.redis, worker, settings.worker_dead_after_s)
            liveness.recover(ctx.redis, ctx.jobs, me=worker)
        except Exception as exc:  # noqa: BLE001 - Redis or the broker away: try again at the next beat
            log.warning("heartbeat: %s", exc)
        if stop.wait(settings.worker_heartbeat_s):
            return


@signals.worker_ready.connect
def start_heartbeat(sender, **_):
    queues = sender.app.amqp.queues
    if not set(queues.consume_from or queues) & set(GENERATION_QUEUES):
        return
    worker = liveness.worker_id(sender.hostname)
    _beating[worker] = stop = threading.Event()
    threading.Thread(target=beat, args=(worker, stop), name="precache-heartbeat", daemon=True).start()
    log.info("worker process %s: heartbeat every %g s", worker, runtime.context().settings.worker_heartbeat_s)


@signals.task_received.connect
def hold_job(sender, request, **_):
    """Record a generation job this worker received (buffered for a batch, or about to run)."""
    if request.name not in GENERATION_TASKS:
        return
    question_id, job_id = request.args[:2]
    try:
        liveness.hold(runtime.context().redis, liveness.worker_id(sender.hostname), job_id,
                      job_kind(request.name, request.kwargs), question_id, request.kwargs.get("tenant", ""))
    except redis.RedisError as exc:  # the broker's own redelivery still covers this job
        log.warning("cannot record job %s as held: %s", job_id, exc)


@signals.worker_shutdown.connect
def stop_heartbeat(sender, **_):
    """A clean stop: the broker gives back what this worker did not finish; nothing to recover."""
    for worker, stop in list(_beating.items()):
        stop.set()
        try:
            liveness.forget(runtime.context().redis, worker)
        except redis.RedisError:
            pass
        _beating.pop(worker, None)
