"""Nothing asked is lost: SQL writes kept in Redis while the database is down, and questions whose job was lost.

The web stores each new question in SQL. When SQL is unreachable it pushes the write to a Redis
list (the outbox); when Redis or the broker is unreachable the question is in SQL but no job was
sent. (Asks go to a Redis list of their own in any case, written to SQL in batches: precache.asklog.)
The sweep (a beat task) repairs both: it writes the outbox and the waiting asks to SQL, then
queues every question recently asked that got the fallback and has no answer and no job, in the
namespace that asked it (the ask log says which). Both steps are idempotent: questions
are unique by hash and queueing goes through the single-flight lock. Last, it sends again each
pending job whose message a Redis broker lost with a dying worker (precache.broker); a worker
settles a job sent twice without generating it twice.
"""

import json
import logging
import time
from datetime import timedelta

import redis
from sqlalchemy import delete, select
from sqlalchemy.exc import OperationalError

from precache import asklog, broker, keys, liveness
from precache.app_context import AppContext
from precache.db import session_scope
from precache.models import Answer, AskLog, HotCacheDrop, Question, utcnow
from precache.store import AnswerStore

log = logging.getLogger(__name__)
MAX_FAILURES = 3  # failed jobs after which the sweep leaves a question to its next asker
QUESTION = "question"  # the kind of the outbox's entries (asks there were kept by earlier versions)


def defer(redis_client, kind: str, **fields) -> None:
    """Keep one SQL write (a new question) in Redis until the sweep can write it."""
    redis_client.rpush(keys.outbox(), json.dumps({"kind": kind, "at": time.time(), **fields}))


def flush_outbox(ctx: AppContext, limit: int = 10000) -> int:
    """Write the kept asks and questions to SQL, oldest first; return how many were written."""
    written = 0
    while written < limit:
        raw = ctx.redis.lindex(keys.outbox(), 0)
        if raw is None:
            break
        entry = json.loads(raw)
        if entry["kind"] == QUESTION:
            ctx.store.ensure_question(entry["text"], entry["normalized"], entry["qhash"])
        else:  # asks kept here before they had a list of their own
            asklog.keep_aside(ctx.redis, asklog.write(ctx.sessions, [entry]))
        # Removed only once written: a crash in between writes an ask twice, never loses it.
        ctx.redis.lpop(keys.outbox())
        written += 1
    return written


def unanswered_asks(ctx: AppContext) -> list[tuple[str, Question]]:
    """Return (tenant, question) for each question asked within the sweep window that got the fallback and has
    no answer in the namespace it was asked in (the ask log says which: questions are shared by tenants)."""
    since = utcnow() - timedelta(seconds=ctx.settings.sweep_window_s)
    missed = select(AskLog.qhash).where(AskLog.asked_at >= since, AskLog.source == "fallback")
    with ctx.sessions() as session:
        namespaces = set(session.scalars(missed.with_only_columns(AskLog.namespace).distinct()))
    found = []
    for tenant in sorted({ctx.settings.tenant_of(ns) for ns in namespaces} - {None}):  # another model's: not ours
        found += [(tenant, question) for question in _unanswered_in(ctx.sessions, ctx.store.for_tenant(tenant), missed)]
    return found


def _unanswered_in(sessions, store: AnswerStore, missed) -> list[Question]:
    """The questions of `missed` asked in the store's namespace that have no answer visible there."""
    answered = select(Answer.question_id).where(store.visible())
    query = (select(Question)
             .where(Question.qhash.in_(missed.where(AskLog.namespace == store.namespace)),
                    Question.id.not_in(answered))
             .order_by(Question.id))
    with sessions() as session:
        return list(session.scalars(query))


def requeue(ctx: AppContext) -> list[str]:
    """Queue each unanswered question that has no job and has not failed too often; return the new job ids."""
    job_ids = []
    for tenant, question in unanswered_asks(ctx):
        tctx = ctx.for_tenant(tenant)
        if tctx.jobs.pending_job(tctx.ns, question.qhash, "quick"):
            continue
        if int(tctx.redis.get(keys.failures(tctx.ns, question.qhash)) or 0) >= MAX_FAILURES:
            continue
        job_id, joined = tctx.jobs.enqueue(tctx.ns, question.qhash, lambda q=question: q.id)
        if not joined:
            job_ids.append(job_id)
    return job_ids


def sweep(ctx: AppContext) -> dict:
    """Write the outbox and the waiting asks to SQL, then queue the questions that lost their job; one at a time."""
    lock = keys.sweep_lock()
    if not ctx.redis.set(lock, "1", nx=True, ex=120):
        return {"written": 0, "queued": 0, "skipped": True}
    try:
        dropped = retry_drops(ctx)
        written = flush_outbox(ctx) + _drain_asks(ctx)
        queued = requeue(ctx)
        # Jobs held by dead workers, then jobs the broker lost.
        resent = liveness.recover(ctx.redis, ctx.jobs) + resend_lost_jobs(ctx)
    except OperationalError as exc:  # the database is still down: the next sweep tries again
        log.warning("sweep postponed, the database is unavailable: %s", exc)
        return {"written": 0, "queued": 0, "resent": 0, "postponed": True}
    finally:
        ctx.redis.delete(lock)
    if written or queued or resent or dropped:
        log.info("sweep: dropped %d hot-cache entries left by invalidations during a Redis outage, wrote %d kept "
                 "asks and questions to SQL, queued %d questions without a job, sent again %d jobs dead workers "
                 "held or the broker lost", dropped, written, len(queued), len(resent))
    return {"written": written, "queued": len(queued), "resent": len(resent), "dropped": dropped}


def retry_drops(ctx: AppContext, limit: int = 10000) -> int:
    """Drop the hot-cache entries that invalidations could not drop while Redis was unreachable (the store wrote
    them to SQL); return how many. Removed from SQL only once Redis dropped them."""
    with ctx.sessions() as session:
        rows = session.execute(select(HotCacheDrop.id, HotCacheDrop.key).order_by(HotCacheDrop.id).limit(limit)).all()
    if not rows:
        return 0
    ctx.redis.delete(*{key for _, key in rows})
    with session_scope(ctx.sessions) as session:
        session.execute(delete(HotCacheDrop).where(HotCacheDrop.id.in_([row_id for row_id, _ in rows])))
    return len(rows)


def _drain_asks(ctx: AppContext) -> int:
    """Write the asks waiting in Redis; an error other than the database being down does not stop the sweep."""
    try:
        return asklog.drain(ctx, wait_s=10)
    except OperationalError:
        raise
    except Exception:  # noqa: BLE001 - the web's writers keep trying; queueing questions matters more
        log.exception("sweep: the asks waiting in Redis could not be written")
        return 0


def resend_lost_jobs(ctx: AppContext) -> list[str]:
    """Send again each pending job whose last message is neither queued nor held by a worker; return their ids.
    The single-flight lock of each pending job the broker still holds is kept: a job waiting behind a
    backlog is not a dead one, and its askers keep joining it.

    Only a message sent more than GENERATION_TIMEOUT_S ago counts as lost: until then it may wait, read
    from the broker but not yet recorded, in the socket of a worker busy with one batch.
    """
    candidates = ctx.jobs.sent_before(time.time() - ctx.settings.generation_timeout_s)
    if not candidates:
        return []
    try:
        held = broker.held_job_ids(ctx.settings.broker_url)
    except redis.RedisError as exc:  # the broker cannot say: no job is taken for lost
        log.warning("cannot read the broker's queues (%s); lost jobs are looked for at the next sweep", exc)
        return []
    resent = ctx.jobs.keep(candidates, lost=set(candidates) - held)
    for job_id in resent:
        log.warning("job %s was pending with no message in the broker (a worker died holding it): sent again",
                    job_id)
    return resent
