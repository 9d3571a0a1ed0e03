"""Dead-worker recovery in seconds: live workers say so, and send again the jobs a dead one held.

A Redis broker hands a dead worker's unacknowledged messages back only after the visibility timeout
(900 s by default: it must outlast the longest batch), and a message still in the dead worker's
socket never comes back (precache/broker.py). So each generation worker process:
- renews `worker:alive:<id>` (TTL WORKER_DEAD_AFTER_S) every WORKER_HEARTBEAT_S from a thread of its
  own, which runs while the model generates;
- records each generation job it receives in `worker:held:<id>` (job id -> kind, question, tenant)
  and forgets it once its batch returns;
- on each heartbeat, looks for held jobs of workers whose alive key is gone, claims them (one RENAME:
  one process wins) and sends each job still pending again, to the queue its last message went to.
The sweep (beat) does the same, should no worker be alive to do it. The old message, redelivered
late, finds its job done and costs a look-up (worker/plan.py settles it). An AMQP broker gives a
dead consumer's messages back at once by itself; this works the same on it.
"""

import json
import logging
import os

import redis

from precache import keys
from precache.jobs import PENDING, Jobs

log = logging.getLogger(__name__)
CLAIMED_TTL_S = 86400  # jobs a claimer took from a dead worker, if the claimer dies before sending them again


def worker_id(hostname: str) -> str:
    """Name one worker process: a restarted worker has the same hostname but is another process."""
    return f"{hostname}/{os.getpid()}"


def heartbeat(client, worker: str, ttl_s: int) -> None:
    client.set(keys.worker_alive(worker), "1", ex=ttl_s)


def hold(client, worker: str, job_id: str, kind: str, question_id: int, tenant: str = "") -> None:
    """Record that the worker received a generation job (it may be buffered or generating)."""
    client.hset(keys.worker_held(worker), job_id,
                json.dumps({"kind": kind, "question_id": question_id, "tenant": tenant}))


def release(client, worker: str, job_ids: list[str]) -> None:
    """Forget jobs whose batch returned (done, failed, or sent again by the batch itself)."""
    if job_ids:
        client.hdel(keys.worker_held(worker), *job_ids)


def forget(client, worker: str) -> None:
    """A worker that stops cleanly: the broker gives its unfinished messages back itself."""
    client.delete(keys.worker_alive(worker), keys.worker_held(worker))


def recover(client: redis.Redis, jobs: Jobs, me: str | None = None) -> list[str]:
    """Send again the pending jobs held by workers that are gone; return their ids. `me`, the calling
    worker, is never taken for dead (a heartbeat late on a starved machine is not a death)."""
    resent = []
    for name in client.scan_iter(match=keys.worker_held("*"), count=100):
        worker = name.decode().removeprefix(keys.worker_held(""))
        if worker == me or client.exists(keys.worker_alive(worker)):
            continue
        claimed = keys.worker_claimed(worker)
        try:
            client.rename(name, claimed)
        except redis.ResponseError:  # another process claimed them first
            continue
        client.expire(claimed, CLAIMED_TTL_S)  # a claimer that dies before resending leaves nothing forever
        resent += _resend_held(client, jobs, worker, claimed)
    return resent


def _resend_held(client: redis.Redis, jobs: Jobs, worker: str, claimed: str) -> list[str]:
    """Send again the pending jobs among those a gone worker held (claimed under `claimed`); return their ids."""
    held = client.hgetall(claimed)
    pending = [(job_id.decode(), json.loads(raw)) for job_id, raw in held.items()
               if (record := jobs.get(job_id.decode())) is not None and record["status"] == PENDING]
    for job_id, info in pending:
        jobs.for_tenant(info.get("tenant", "")).continue_with(info["kind"], info["question_id"], job_id)
    client.delete(claimed)
    log.warning("worker %s is gone: sent again the %d pending jobs of the %d it held", worker, len(pending),
                len(held))
    return [job_id for job_id, _ in pending]
