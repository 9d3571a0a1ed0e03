"""The ask log off the request path: each ask is pushed to a Redis list and written to SQL in batches.

The web records every ask (question, source, latency, answer). A row with a commit of its own cost
an exact hit more than the rest of its path (a commit: ~0.25 ms on SQLite, 1-4 ms on PostgreSQL
on these machines; docs/benchmarks.md), so the web pushes the entry to a Redis list (one RPUSH) and a writer moves the
list to SQL, up to BATCH rows a transaction: a thread of each web process every ASK_LOG_FLUSH_MS, the
sweep, and whatever reads the log (stats, predictive precompute) right before it reads.

One writer at a time (a Redis lock). Entries leave the list only once their batch is committed, and
only while the writer still holds the lock and the list is the one it read, so a writer that dies,
or loses its lock, in between writes that batch twice, never loses it; with the database down they
wait in Redis for the next write that succeeds. Each web process also remembers its asks until they
are in SQL, so that a Redis that loses its data (a restart without persistence) loses none of them
(precache/ask_writer.py). With Redis down the web writes the ask to SQL itself, as it does for every ask with
ASK_LOG_FLUSH_MS = 0.
"""

import json
import logging
import time
from datetime import datetime, timezone

import redis
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from precache import keys
from precache.app_context import AppContext
from precache.models import Answer, AskLog

log = logging.getLogger(__name__)
BATCH = 500  # rows a transaction
LOCK_S = 60  # the writer's lock expires after this, should its process die holding it


def push(ctx: AppContext, **fields) -> None:
    """Record one ask: into the Redis list (straight to SQL without Redis, or with flushing off)."""
    entry = {"at": time.time(), **fields}
    if ctx.settings.ask_log_flush_ms > 0 and ctx.ask_log.push(entry):
        return
    try:
        keep_aside(ctx.redis, write(ctx.sessions, [entry]))
    except (SQLAlchemyError, redis.RedisError):  # the asker still gets the answer; the loss is logged
        log.exception("cannot write the ask log: neither Redis nor the database answers")


def write(sessions, entries: list[dict]) -> list[dict]:
    """Insert ask entries (as pushed) in one transaction; return the rows the database could never take.

    A row with a value longer than its column is left out and returned (to be kept aside, not to hold
    up every ask after it). A row whose answer was deleted since it was asked is kept without the link.
    """
    rows, refused = [], []
    for row in map(_row, entries):
        (rows if _fits(row) else refused).append(row)
    if not rows:
        return refused
    try:
        _insert(sessions, rows)
    except IntegrityError:
        _insert(sessions, _unlink_deleted_answers(sessions, rows))
    return refused


def _insert(sessions, rows: list[dict]) -> None:
    with sessions() as session:
        session.execute(insert(AskLog), rows)
        session.commit()


def _unlink_deleted_answers(sessions, rows: list[dict]) -> list[dict]:
    """The rows, without the link to an answer deleted since it was asked."""
    linked = {row["answer_id"] for row in rows if row.get("answer_id") is not None}
    if not linked:
        return rows
    with sessions() as session:
        kept = set(session.scalars(select(Answer.id).where(Answer.id.in_(linked))))
    return [row if row.get("answer_id") in kept | {None} else row | {"answer_id": None} for row in rows]


def _fits(row: dict) -> bool:
    """Whether every text of an ask log row fits its column."""
    return all(row.get(name) is None or len(row[name]) <= length for name, length in _LENGTHS.items())


_LENGTHS = {c.name: c.type.length for c in AskLog.__table__.columns if getattr(c.type, "length", None)}


def refused_entries(rows: list[dict]) -> list[str]:
    """Say that rows the database cannot take are kept aside; return them as the JSON kept in asks_refused."""
    if rows:
        log.error("%d ask log entries the database refuses are kept in Redis under %s, e.g. %s", len(rows),
                  keys.asks_refused(), json.dumps(rows[0], default=str)[:500])
    return [json.dumps(row, default=str) for row in rows]


def keep_aside(redis_client: redis.Redis, rows: list[dict]) -> None:
    """Keep rows the database cannot take in asks_refused (drain does it in its trim script instead)."""
    if rows:
        pipe = redis_client.pipeline(transaction=False)
        pipe.rpush(keys.asks_refused(), *refused_entries(rows))
        pipe.ltrim(keys.asks_refused(), -REFUSED_KEPT, -1)
        pipe.execute()


def _row(entry: dict) -> dict:
    entry = dict(entry)
    at = entry.pop("at", None)
    entry.pop("kind", None)  # entries the outbox kept before asks had a list of their own
    return entry | {"asked_at": datetime.fromtimestamp(at, timezone.utc) if at else datetime.now(timezone.utc)}


def unwritten(sessions, entries: list[dict]) -> list[dict]:
    """Return the entries whose ask is not in SQL (by question hash and the instant it was asked).

    Another process may have written an ask before Redis lost the record of it; it is not written twice.
    """
    rows = [_row(entry) for entry in entries]
    seen = set()
    for at in range(0, len(rows), BATCH):
        chunk = rows[at:at + BATCH]
        query = select(AskLog.qhash, AskLog.asked_at).where(
            AskLog.asked_at >= min(r["asked_at"] for r in chunk), AskLog.qhash.in_({r["qhash"] for r in chunk}))
        with sessions() as session:
            seen.update((qhash, _utc(asked_at)) for qhash, asked_at in session.execute(query))
    return [entry for entry, row in zip(entries, rows) if (row["qhash"], _utc(row["asked_at"])) not in seen]


def _utc(at: datetime) -> datetime:
    """The instant as a naive UTC datetime (SQLite gives naive UTC back, PostgreSQL aware)."""
    return at.astimezone(timezone.utc).replace(tzinfo=None) if at.tzinfo else at


# Trim the rows a writer has written, and count them, only while it still holds the lock and the list
# is the one it read (same epoch): else another writer took over or Redis lost the list, and
# trimming would drop asks nobody wrote. Rows the database refused go to their own list meanwhile.
REFUSED_KEPT = 10000  # the newest refused rows kept for an operator to look at; older ones are dropped
_TRIM = """
if redis.call('get', KEYS[1]) ~= ARGV[1] or (redis.call('get', KEYS[4]) or '') ~= ARGV[3] then return 0 end
redis.call('ltrim', KEYS[2], tonumber(ARGV[2]), -1)
redis.call('incrby', KEYS[3], tonumber(ARGV[2]))
for i = 4, #ARGV do redis.call('rpush', KEYS[5], ARGV[i]) end
if #ARGV >= 4 then redis.call('ltrim', KEYS[5], -REFUSED_KEPT, -1) end
return 1
""".replace("REFUSED_KEPT", str(REFUSED_KEPT))


def drain(ctx: AppContext, wait_s: float = 0.0, batch: int = BATCH, budget_s: float = LOCK_S / 3) -> int:
    """Write the asks waiting in Redis to SQL, oldest first; return how many left the list.

    `wait_s`: how long to wait for another writer to finish (0: leave the work to it). A reader
    that wants the asks so far (stats) waits. `budget_s`: no new batch after this long (a backlog
    left by a database outage is written over several calls; the lock is handed back long before
    it expires).
    """
    lock = ctx.redis.lock(keys.asks_lock(), timeout=LOCK_S, sleep=0.01)
    if not lock.acquire(blocking=wait_s > 0, blocking_timeout=wait_s or None):
        return 0
    until, written = time.monotonic() + min(budget_s, LOCK_S / 3), 0
    try:
        trim = ctx.redis.register_script(_TRIM)
        while time.monotonic() < until:
            taken = _write_batch(ctx, lock, trim, batch)
            if taken is None:
                break
            written += taken
            if taken < batch:
                break
            lock.reacquire()
    finally:
        _release(lock)
    return written


def _release(lock) -> None:
    try:
        lock.release()
    except redis.exceptions.LockError:  # held past LOCK_S: it expired, nothing to release
        pass


def _write_batch(ctx: AppContext, lock, trim, batch: int) -> int | None:
    """Write the oldest `batch` asks and trim them from the list; None when the list changed meanwhile."""
    with ctx.redis.pipeline() as pipe:
        raw, epoch = pipe.lrange(keys.asks(), 0, batch - 1).get(keys.asks_epoch()).execute()
    if not raw:
        return 0
    entries, refused = _parse(raw)
    refused += refused_entries(write(ctx.sessions, entries))
    lists = [keys.asks_lock(), keys.asks(), keys.asks_written(), keys.asks_epoch(), keys.asks_refused()]
    if not trim(keys=lists, args=[lock.local.token, len(raw), epoch or b"", *refused]):
        log.warning("the ask list changed while %d asks were written (lock lost or Redis restarted): "
                    "left for the next writer, which may write them again", len(raw))
        return None
    return len(raw)


def _parse(raw: list[bytes]) -> tuple[list[dict], list[str]]:
    """Return the entries precache pushed, and the others (kept aside, as they are)."""
    entries, refused = [], []
    for item in raw:
        try:
            entries.append(json.loads(item))
        except ValueError:  # not pushed by precache
            refused.append(item.decode("utf-8", "replace"))
    return entries, refused


def catch_up(ctx: AppContext, wait_s: float = 2.0) -> None:
    """Write the asks pushed so far (up to 5 s of backlog), before reading the log; without Redis the log is read as it is."""
    try:
        drain(ctx, wait_s, budget_s=5.0)
    except redis.RedisError as exc:
        log.warning("asks waiting in Redis cannot be read, the ask log is read without them: %s", exc)
