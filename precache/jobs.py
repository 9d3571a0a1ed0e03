"""Jobs: single-flight enqueueing of misses, their state in Redis, and waiting for them."""

import time
import uuid

from precache import keys
from precache.queueing import GENERATION_TIME_LIMIT_S, JOB_KINDS, PRECOMPUTE, REPLY, queue_for

PENDING, READY, FAILED = "pending", "ready", "failed"
# A job's single-flight lock frees itself after this long unless the sweep finds its message still in the
# broker (a backlog) and keeps it: askers of a question whose job died then open a new one.
LOCK_TTL_S = GENERATION_TIME_LIMIT_S * 2
KEEP_LOCK = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('expire', KEYS[1], ARGV[2]) end return 0"
class Jobs:
    """Create, join, finish and wait for generation jobs."""

    def __init__(self, redis_client, settings, celery=None, tenant: str = ""):
        self.redis = redis_client
        self.settings = settings
        self.celery = celery
        self.tenant = tenant  # the tasks these jobs send store their answers in this tenant's namespace

    def for_tenant(self, tenant: str) -> "Jobs":
        """Return jobs whose tasks work in one tenant's namespace."""
        return self if tenant == self.tenant else Jobs(self.redis, self.settings, self.celery, tenant)

    def enqueue(self, ns: str, qhash: str, question_id_of, request_id: str | None = None,
                kind: str = "quick", background: bool = False, language: str = "en") -> tuple[str, bool]:
        """Return (job_id, joined): one job per question and kind; concurrent askers join it.

        `question_id_of()` stores the question and returns its id; it runs only for the
        first asker, and the task is sent only after that commit. A `background` job (FAQ and
        predictive precompute) waits on the precompute queue, behind every asker's question; an asker
        who joins it sends it again on the queue of its kind (the worker settles the second message).
        `language` is the question's: a poll of the job gets the fallback in it.
        """
        lock = keys.pending(ns, qhash, kind)
        headers = {"request_id": request_id or "-"}  # a message header, so worker logs carry it too
        job_id, joined = self._claim(lock, ns, qhash, kind, language)
        if joined:
            if not background:
                self._promote(job_id, headers)
            return job_id, True
        try:
            question_id = question_id_of()
            self._send(kind, question_id, job_id, PRECOMPUTE if background else JOB_KINDS[kind][2],
                       {"question_id": question_id}, task_id=job_id, headers=headers)
        except Exception:
            self.redis.delete(lock)
            self.redis.delete(keys.job(job_id))
            self.redis.zrem(keys.sent_jobs(), job_id)
            raise
        return job_id, False

    def _claim(self, lock: str, ns: str, qhash: str, kind: str, language: str = "en") -> tuple[str, bool]:
        """Return (job_id, joined): a new pending job holding the question's lock, or the job that holds it."""
        while True:
            job_id = str(uuid.uuid4())
            self._write(job_id, status=PENDING, ns=ns, qhash=qhash, kind=kind, tenant=self.tenant,
                        created=time.time(), lang=language)
            if self.redis.set(lock, job_id, nx=True, ex=LOCK_TTL_S):
                return job_id, False
            self.redis.delete(keys.job(job_id))
            existing = self.redis.get(lock)
            if existing is not None:
                return existing.decode(), True

    def _promote(self, job_id: str, headers: dict) -> None:
        """Send a background job again on its kind's own queue, once, now that someone asks for it."""
        record = self.get(job_id)
        if not record or record["status"] != PENDING or "sent_kind" not in record:
            return  # done, or not sent yet (its sender is still at it)
        kind = record["sent_kind"]
        if record.get("sent_queue") == JOB_KINDS[kind][2]:
            return  # already where this kind of job goes (a refresh is background work for everyone)
        if self.redis.hsetnx(keys.job(job_id), "promoted", "1"):
            self.for_tenant(record.get("tenant", ""))._send(kind, int(record["sent_question_id"]), job_id,
                                                            JOB_KINDS[kind][2], headers=headers)

    def _send(self, kind: str, question_id: int, job_id: str, queue: str, record: dict | None = None,
              **options) -> None:
        task, kwargs, _ = JOB_KINDS[kind]
        if self.tenant:
            kwargs = {**kwargs, "tenant": self.tenant}
        # What was sent last, where and when: the sweep sends it again if the broker lost the message.
        self._write(job_id, sent_at=time.time(), sent_kind=kind, sent_question_id=question_id, sent_queue=queue,
                    **(record or {}))
        self.celery.send_task(task, args=[question_id, job_id], kwargs=kwargs, queue=queue, **options)

    def sent_before(self, cutoff: float, limit: int = 10000) -> list[str]:
        """Return the unfinished jobs whose last message was sent before `cutoff` (a time.time()), oldest first.
        Jobs sent longer ago than their records last leave the watch first (nothing is left to resend)."""
        self.redis.zremrangebyscore(keys.sent_jobs(), "-inf", time.time() - self.settings.job_ttl_s)
        return [job_id.decode() for job_id in
                self.redis.zrangebyscore(keys.sent_jobs(), "-inf", cutoff, start=0, num=limit)]

    def keep(self, job_ids: list[str], lost: set[str]) -> list[str]:
        """Keep the single-flight lock of each pending job for another LOCK_TTL_S, its message being in the
        broker; send the message of each job in `lost` again (the broker lost it). Jobs over or gone leave
        the watch. Returns the ids sent again. A few pipelined round trips, whatever the backlog."""
        records = self._records(job_ids)
        pipe, resend = self.redis.pipeline(transaction=False), []
        for job_id, record in zip(job_ids, records, strict=True):
            if record is None or record["status"] != PENDING or "sent_kind" not in record:
                pipe.zrem(keys.sent_jobs(), job_id)
                continue
            # Only while the lock still names this job (it may have finished and another begun since).
            pipe.eval(KEEP_LOCK, 1, keys.pending(record["ns"], record["qhash"], record["kind"]), job_id, LOCK_TTL_S)
            if job_id in lost:
                resend.append((job_id, record))
        pipe.execute()
        for job_id, record in resend:  # to the queue its last message went to
            kind = record["sent_kind"]
            self.for_tenant(record.get("tenant", ""))._send(kind, int(record["sent_question_id"]), job_id,
                                                            record.get("sent_queue") or JOB_KINDS[kind][2])
        return [job_id for job_id, _ in resend]

    def _records(self, job_ids: list[str]) -> list[dict | None]:
        """The jobs' records, in one pipelined round trip; None for a job gone."""
        pipe = self.redis.pipeline(transaction=False)
        for job_id in job_ids:
            pipe.hgetall(keys.job(job_id))
        return [_record(raw) for raw in pipe.execute()]

    def continue_with(self, kind: str, question_id: int, job_id: str, **options) -> None:
        """Send another task for a job that stays pending (its askers keep waiting): a regeneration, a retry.

        It goes where the job's last message went: an asker's job stays ahead of background work."""
        queue = self.redis.hget(keys.job(job_id), "sent_queue")
        self._send(kind, question_id, job_id, queue.decode() if queue else JOB_KINDS[kind][2], **options)

    def send_reply(self, kind: str, payload, request_id: str | None = None) -> str:
        """Send a reply job (worker/replies.py: "rewrite" a follow-up, or an "answer" kept nowhere) to the quick
        queue; return its id. Its record holds the text when it is ready (wait for it with `wait`)."""
        reply_id = str(uuid.uuid4())
        self._write(reply_id, status=PENDING, kind=f"reply:{kind}", created=time.time())
        self.celery.send_task(REPLY, args=[reply_id, kind, payload], kwargs={"tenant": self.tenant} if self.tenant else {},
                              queue=queue_for(REPLY), task_id=reply_id, headers={"request_id": request_id or "-"})
        return reply_id

    def finish_reply(self, reply_id: str, *, text: str | None = None, error: str | None = None,
                     finish_reason: str = "stop", keep_s: int | None = None) -> None:
        """Mark a reply ready with its text, or failed, and wake its waiter; the record lasts `keep_s`
        (default JOB_TTL_S)."""
        if error is None:
            self._write(reply_id, ttl_s=keep_s, status=READY, text=text, finish_reason=finish_reason)
        else:
            self._write(reply_id, ttl_s=keep_s, status=FAILED, error=error)
        self.redis.publish(keys.job_done(reply_id), "1")

    def forget(self, job_id: str) -> None:
        """Delete a job's record and its token stream (a no-store reply, once its asker has the text)."""
        self.redis.delete(keys.job(job_id), keys.tokens(job_id))

    def pending_job(self, ns: str, qhash: str, kind: str) -> str | None:
        """Return the id of the job of this kind running for a question, if any."""
        job_id = self.redis.get(keys.pending(ns, qhash, kind))
        return job_id.decode() if job_id else None

    def _write(self, job_id: str, sent_at: float | None = None, ttl_s: int | None = None, **fields) -> None:
        name = keys.job(job_id)
        pipe = self.redis.pipeline()
        pipe.hset(name, mapping={k: str(v) for k, v in fields.items()})
        pipe.expire(name, ttl_s or self.settings.job_ttl_s)
        if sent_at is not None:
            pipe.zadd(keys.sent_jobs(), {job_id: sent_at})
        pipe.execute()

    def get(self, job_id: str) -> dict | None:
        """Return the job record, or None if there is no such job."""
        return _record(self.redis.hgetall(keys.job(job_id)))

    def finish(self, job_id: str, ns: str, qhash: str, *, answer_id=None, error=None) -> None:
        """Mark a job ready (with its answer) or failed, release its lock and wake waiters."""
        if error is None and answer_id is None:
            error = "the job produced no answer"
        if error is None:
            self._write(job_id, status=READY, answer_id=answer_id)
        else:
            self._write(job_id, status=FAILED, error=error)
            failures = keys.failures(ns, qhash)
            self.redis.incr(failures)
            self.redis.expire(failures, self.settings.job_ttl_s)
        self.redis.hdel(keys.inflight(ns), job_id)
        self.redis.zrem(keys.sent_jobs(), job_id)
        self._release(job_id, ns, qhash)
        self.redis.publish(keys.job_done(job_id), "1")

    def _release(self, job_id: str, ns: str, qhash: str) -> None:
        """Release the job's single-flight lock if it still holds it."""
        # The lock is the one taken at enqueue time (the worker may answer a linked canonical question).
        kind, locked_qhash = self.redis.hmget(keys.job(job_id), "kind", "qhash")
        qhash = locked_qhash.decode() if locked_qhash else qhash
        lock = keys.pending(ns, qhash, kind.decode() if kind else "quick")
        if self.redis.get(lock) == job_id.encode():
            self.redis.delete(lock)

    def wait(self, job_id: str, timeout_s: float) -> dict | None:
        """Wait up to `timeout_s` for the job to leave pending; return its record."""
        deadline = time.monotonic() + timeout_s
        pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        try:
            pubsub.subscribe(keys.job_done(job_id))
            while True:
                record = self.get(job_id)
                remaining = deadline - time.monotonic()
                if record is None or record["status"] != PENDING or remaining <= 0:
                    return record
                pubsub.get_message(timeout=remaining)
        finally:
            pubsub.close()


def _record(raw: dict) -> dict | None:
    """Decode a job record read from Redis; None for a remnant without a status (its key vanished between two
    writes): no job."""
    record = {k.decode(): v.decode() for k, v in raw.items()}
    return record if "status" in record else None
