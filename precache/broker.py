"""What a Redis broker still holds of the generation jobs: the messages waiting in their queues and
those a worker took and has not acknowledged.

kombu's Redis transport takes a message with BRPOP and records it as unacknowledged only when the
worker reads the reply. A generation worker is often busy in the model while its
BRPOP is answered, so a message sent during a generation waits in the worker's socket; if the worker
dies then, the message is gone from Redis for good and is never redelivered (celery/kombu#305,
celery/celery#7950). The sweep sends such a job again (precache.recovery.resend_lost_jobs).
"""

import base64
import json
import logging
import threading

import redis
from kombu.transport.redis import PRIORITY_STEPS, Channel

from precache.queueing import GENERATION_QUEUES, GENERATION_TASKS

log = logging.getLogger(__name__)
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


def held_job_ids(broker_url: str) -> set[str] | None:
    """Return the job ids of the generation messages a Redis broker holds, queued or unacknowledged.

    None when the broker is not a plain Redis URL: AMQP brokers give a dead consumer's messages back
    themselves, and what a Sentinel setup holds is not read here.
    """
    if not broker_url.startswith(REDIS_SCHEMES):
        return None
    queued, unacked = _snapshot(broker_url)
    found = {_job_id(raw, unacked=False) for items in queued for raw in items}
    found |= {_job_id(raw, unacked=True) for raw in unacked}
    return found - {None}


def _snapshot(broker_url: str) -> tuple[list[list[bytes]], list[bytes]]:
    """Read, in one transaction, every generation queue's messages and the unacknowledged ones."""
    lists = [queue if not priority else f"{queue}{Channel.sep}{priority}"
             for queue in GENERATION_QUEUES for priority in PRIORITY_STEPS]
    client = redis.Redis.from_url(broker_url)
    try:
        pipe = client.pipeline(transaction=True)  # one snapshot: a message moving to unacked is seen once
        for name in lists:
            pipe.lrange(name, 0, -1)
        pipe.hvals(Channel.unacked_key)
        *queued, unacked = pipe.execute()
    finally:
        client.close()
    return queued, unacked


def _job_id(raw: bytes, unacked: bool) -> str | None:
    """Return the job id a generation message carries (its second argument), or None for any other message."""
    try:
        message = json.loads(raw)
        if unacked:
            message = message[0]  # [message, exchange, routing key]
        if message.get("headers", {}).get("task") not in GENERATION_TASKS:
            return None
        body = message["body"]
        if message.get("properties", {}).get("body_encoding") == "base64":
            body = base64.b64decode(body)
        args = json.loads(body)[0]
        return str(args[1])
    except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
        log.warning("a broker message that is not a readable generation message: %s", exc)
        return None


_clients: dict[str, redis.Redis] = {}
_clients_lock = threading.Lock()


def depths(broker_url: str, queues) -> dict[str, int | None]:
    """Messages waiting in each queue (not those taken by a worker); None for each when the broker cannot
    say. Redis: LLEN (one pooled client per URL); AMQP: a passive queue declare."""
    try:
        if broker_url.startswith(REDIS_SCHEMES):
            return _redis_depths(broker_url, queues)
        from kombu import Connection

        with Connection(broker_url, connect_timeout=2) as conn:
            channel = conn.channel()
            return {name: _declared(channel, name) for name in queues}
    except Exception as exc:  # noqa: BLE001 - the broker is down or refuses us: "unknown", never a failure
        log.debug("cannot read queue depths: %s", exc)
        return dict.fromkeys(queues)


def _redis_depths(broker_url: str, queues) -> dict[str, int]:
    with _clients_lock:
        client = _clients.get(broker_url) or _clients.setdefault(
            broker_url, redis.Redis.from_url(broker_url, socket_timeout=2, socket_connect_timeout=2))
    with client.pipeline(transaction=False) as pipe:
        for name in queues:
            pipe.llen(name)
        return dict(zip(queues, (int(n) for n in pipe.execute())))


def _declared(channel, name: str) -> int | None:
    try:
        return int(channel.queue_declare(name, passive=True).message_count)
    except Exception:  # noqa: BLE001 - no such queue yet
        return None
