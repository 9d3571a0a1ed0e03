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
(Writer). With Redis down the web writes the ask to SQL itself, as it does for every ask with
ASK_LOG_FLUSH_MS = 0.
"""

import atexit
import json
import logging
import threading
import time
import uuid
from collections import deque
from datetime import datetime, timezone

import redis
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from precache import keys
from precache.models import Answer, AskLog

log = logging.getLogger(__name__)
BATCH = 500  # rows a transaction
LOCK_S = 60  # the writer's lock expires after this, should its process die holding it
REMEMBERED = 100_000  # asks a web process keeps in memory until they are in SQL (a database outage)
# An exact hit's answer read and its ask pushed in one round trip (Writer.hit_and_push): the ask's JSON
# is ARGV[1] up to its answer_id, which is taken from the answer's JSON; nothing is pushed on a miss.
HIT_AND_PUSH = """
local answer = redis.call('GET', KEYS[1])
if not answer then return nil end
local id = string.match(answer, '"answer_id": *(%d+)') or 'null'
redis.call('SET', KEYS[2], ARGV[2], 'NX')
local length = redis.call('RPUSH', KEYS[3], ARGV[1] .. id .. '}')
return {answer, length, redis.call('GET', KEYS[2]), redis.call('GET', KEYS[4])}
"""


def push(ctx, **fields) -> None:
    """Record one ask: into the Redis list (straight to SQL without Redis, or with flushing off)."""
    entry = {"at": time.time(), **fields}
    if ctx.settings.ask_log_flush_ms > 0 and ctx.ask_log.push(entry):
        return
    try:
        keep_aside(ctx, write(ctx, [entry]))
    except (SQLAlchemyError, redis.RedisError):  # the asker still gets the answer; the loss is logged
        log.exception("cannot write the ask log: neither Redis nor the database answers")


def write(ctx, entries: list[dict]) -> list[dict]:
    """Insert ask entries (as pushed) in one transaction; return the rows the database could never take.

    A row with a value longer than its column is left out and returned (to be kept aside, not to hold
    up every ask after it). A row whose answer was deleted since it was asked is kept without the link.
    """
    rows, refused = [], []
    for entry in entries:
        row = _row(entry)
        (rows if _fits(row) else refused).append(row)
    if not rows:
        return refused
    try:
        with ctx.sessions() as session:
            session.execute(insert(AskLog), rows)
            session.commit()
        return refused
    except IntegrityError:
        pass
    with ctx.sessions() as session:
        linked = {row["answer_id"] for row in rows if row.get("answer_id") is not None}
        kept = set(session.scalars(select(Answer.id).where(Answer.id.in_(linked)))) if linked else set()
        rows = [row if row.get("answer_id") in kept | {None} else row | {"answer_id": None} for row in rows]
        session.execute(insert(AskLog), rows)
        session.commit()
    return refused


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


def keep_aside(ctx, rows: list[dict]) -> None:
    """Keep rows the database cannot take in asks_refused (drain does it in its trim script instead)."""
    if rows:
        ctx.redis.rpush(keys.asks_refused(), *refused_entries(rows))


def _row(entry: dict) -> dict:
    entry = dict(entry)
    at = entry.pop("at", None)
    entry.pop("kind", None)  # entries the outbox kept before asks had a list of their own
    return entry | {"asked_at": datetime.fromtimestamp(at, timezone.utc) if at else datetime.now(timezone.utc)}


def unwritten(ctx, entries: list[dict]) -> list[dict]:
    """Return the entries whose ask is not in SQL (by question hash and the instant it was asked).

    Another process may have written an ask before Redis lost the record of it; it is not written twice.
    """
    rows = [_row(entry) for entry in entries]
    seen = set()
    for at in range(0, len(rows), BATCH):
        chunk = rows[at:at + BATCH]
        query = select(AskLog.qhash, AskLog.asked_at).where(
            AskLog.asked_at >= min(r["asked_at"] for r in chunk), AskLog.qhash.in_({r["qhash"] for r in chunk}))
        with ctx.sessions() as session:
            seen.update((qhash, _utc(asked_at)) for qhash, asked_at in session.execute(query))
    return [entry for entry, row in zip(entries, rows) if (row["qhash"], _utc(row["asked_at"])) not in seen]


def _utc(at: datetime) -> datetime:
    """The instant as a naive UTC datetime (SQLite gives naive UTC back, PostgreSQL aware)."""
    return at.astimezone(timezone.utc).replace(tzinfo=None) if at.tzinfo else at


# Trim the rows a writer has written, and count them, only while it still holds the lock and the list
# is the one it read (same epoch): else another writer took over or Redis lost the list, and
# trimming would drop asks nobody wrote. Rows the database refused go to their own list meanwhile.
_TRIM = """
if redis.call('get', KEYS[1]) ~= ARGV[1] or (redis.call('get', KEYS[4]) or '') ~= ARGV[3] then return 0 end
redis.call('ltrim', KEYS[2], tonumber(ARGV[2]), -1)
redis.call('incrby', KEYS[3], tonumber(ARGV[2]))
for i = 4, #ARGV do redis.call('rpush', KEYS[5], ARGV[i]) end
return 1
"""


def drain(ctx, wait_s: float = 0.0, batch: int = BATCH, budget_s: float = LOCK_S / 3) -> int:
    """Write the asks waiting in Redis to SQL, oldest first; return how many left the list.

    `wait_s`: how long to wait for another writer to finish (0: leave the work to it). A reader
    that wants the asks so far (stats) waits. `budget_s`: no new batch after this long (a backlog
    left by a database outage is written over several calls; the lock is handed back long before
    it expires).
    """
    lock = ctx.redis.lock(keys.asks_lock(), timeout=LOCK_S, sleep=0.01)
    if not lock.acquire(blocking=wait_s > 0, blocking_timeout=wait_s or None):
        return 0
    trim = ctx.redis.register_script(_TRIM)
    lists = [keys.asks_lock(), keys.asks(), keys.asks_written(), keys.asks_epoch(), keys.asks_refused()]
    written, until = 0, time.monotonic() + min(budget_s, LOCK_S / 3)
    try:
        while time.monotonic() < until:
            with ctx.redis.pipeline() as pipe:
                raw, epoch = pipe.lrange(keys.asks(), 0, batch - 1).get(keys.asks_epoch()).execute()
            if not raw:
                break
            entries, refused = [], []
            for item in raw:
                try:
                    entries.append(json.loads(item))
                except ValueError:  # not pushed by precache: kept aside, as is
                    refused.append(item.decode("utf-8", "replace"))
            refused += refused_entries(write(ctx, entries))
            if not trim(keys=lists, args=[lock.local.token, len(raw), epoch or b"", *refused]):
                log.warning("the ask list changed while %d asks were written (lock lost or Redis restarted): "
                            "left for the next writer, which may write them again", len(raw))
                break
            written += len(raw)
            if len(raw) < batch:
                break
            lock.reacquire()
    finally:
        try:
            lock.release()
        except redis.exceptions.LockError:  # held past LOCK_S: it expired, nothing to release
            pass
    return written


def catch_up(ctx, wait_s: float = 2.0) -> None:
    """Write the asks pushed so far (up to 5 s of backlog), before reading the log; without Redis the log is read as it is."""
    try:
        drain(ctx, wait_s, budget_s=5.0)
    except redis.RedisError as exc:
        log.warning("asks waiting in Redis cannot be read, the ask log is read without them: %s", exc)


class Writer:
    """One process's asks: pushed to the Redis list, remembered until written, drained every `interval_s`.

    Each push learns the ask's place in the stream of all asks pushed to this Redis (the epoch, a
    random id the first push sets, and the position: asks written so far + the list's length after
    the push, read in the same transaction). Every tick the thread drains the list (when no other
    process is at it), then compares: an ask at or before `written` is in SQL and forgotten; one
    within the list still waits; one past both, or of another epoch, was lost with Redis's data (a
    restart without persistence) and is written to SQL from here. So a Redis that loses its data
    loses no ask of a live web process; a process that dies leaves its asks in the list for others.
    """

    def __init__(self, ctx, interval_s: float):
        self.ctx, self.interval_s = ctx, interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._unconfirmed: deque[tuple[bytes, int, dict]] = deque()  # (epoch, position, entry), in push order
        self._flushing = threading.Lock()  # one flush at a time (the thread's, or close's)
        self._failing = False
        self._redis_down = False
        self._hit_and_push = None

    def push(self, entry: dict) -> bool:
        """Push one ask to the list; False when Redis cannot take it (the caller writes it to SQL)."""
        try:
            with self.ctx.redis.pipeline() as pipe:
                # A fresh id each time: only the first push to a Redis that has none sets it.
                pipe.set(keys.asks_epoch(), uuid.uuid4().hex, nx=True).rpush(keys.asks(), json.dumps(entry))
                _, length, epoch, written = pipe.get(keys.asks_epoch()).get(keys.asks_written()).execute()
        except redis.RedisError as exc:
            log.warning("Redis unavailable, the ask is written to SQL directly: %s", exc)
            return False
        self._remember(epoch, written, length, entry)
        return True

    def hit_and_push(self, answer_key: str, entry: dict) -> dict | None:
        """Read a hot-cache answer and, when there is one, push the ask of it: one round trip (a Lua script).

        `entry` is the ask without its answer_id, which the script takes from the answer. Returns the
        answer (the ask is pushed and remembered as `push` does), or None when the hot cache has none
        (nothing is pushed). Raises redis.RedisError: the caller goes the usual way.
        """
        head = json.dumps(entry)[:-1] + (', ' if entry else '') + '"answer_id": '
        if self._hit_and_push is None:  # sent by its SHA; the script itself only when Redis does not have it
            self._hit_and_push = self.ctx.redis.register_script(HIT_AND_PUSH)
        reply = self._hit_and_push(keys=[answer_key, keys.asks_epoch(), keys.asks(), keys.asks_written()],
                                   args=[head, uuid.uuid4().hex])
        if reply is None:
            return None
        cached, length, epoch, written = reply
        payload = json.loads(cached)
        self._remember(epoch, written, length, {**entry, "answer_id": payload.get("answer_id")})
        return payload

    def _remember(self, epoch: bytes, written, length: int, entry: dict) -> None:
        with self._lock:
            if len(self._unconfirmed) == REMEMBERED:  # the oldest stays in Redis, unguarded against its loss
                self._unconfirmed.popleft()
            self._unconfirmed.append((epoch, int(written or 0) + length, entry))
        self.start()

    def start(self) -> None:
        if self._thread is not None:
            return
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="ask-log-writer", daemon=True)
                self._thread.start()
                atexit.register(self.close)  # a process that ends writes what it took (gunicorn, flask run)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.flush()
            except Exception:  # noqa: BLE001 - the thread must outlive any one bad tick
                log.exception("ask log writer: unexpected error, trying again in %.1f s", self.interval_s)

    def flush(self, wait_s: float = 0.0, redis_gone: bool = False) -> int:
        """Drain once and settle this process's asks; an outage is logged when it starts and ends, not at every try.

        `redis_gone`: Redis cannot say what became of the asks (it is down at the end of the
        process): write them here, a second copy rather than none.
        """
        with self._flushing:
            try:
                written = drain(self.ctx, wait_s) if not redis_gone else 0
                written += self._settle(redis_gone)
            except (SQLAlchemyError, redis.RedisError) as exc:
                if not self._failing:
                    log.warning("the ask log waits until it can be written: %s", exc)
                self._failing, self._redis_down = True, isinstance(exc, redis.RedisError)
                return 0
            if self._failing:
                log.info("the ask log is written again (%d asks that waited)", written)
            self._failing = self._redis_down = False
            return written

    def _settle(self, redis_gone: bool) -> int:
        """Forget the asks that are in SQL; write those Redis lost; return how many were written here."""
        with self._lock:
            if not self._unconfirmed:
                return 0
            mine = list(self._unconfirmed)
        if redis_gone:
            epoch, written, waiting = None, 0, 0
        else:
            with self.ctx.redis.pipeline() as pipe:
                epoch, written, waiting = pipe.get(keys.asks_epoch()).get(keys.asks_written()).llen(keys.asks()).execute()
            written = int(written or 0)
        done, lost = 0, []
        for ask_epoch, position, entry in mine:
            if ask_epoch == epoch and position <= written:
                done += 1
            elif ask_epoch == epoch and position <= written + waiting:
                break  # this one and the later ones still wait in the list
            else:
                lost.append(entry)
                done += 1
        lost = unwritten(self.ctx, lost)
        if lost:
            keep_aside(self.ctx, write(self.ctx, lost))
            log.warning("Redis lost %d asks before they were written; written from this process", len(lost))
        with self._lock:  # the ones looked at (a push may have dropped some of them meanwhile, at the cap)
            for item in mine[:done]:
                if self._unconfirmed and self._unconfirmed[0] is item:
                    self._unconfirmed.popleft()
        return len(lost)

    def close(self, timeout: float = 5.0) -> None:
        """Stop the thread and write what is left (to SQL from here if Redis no longer answers)."""
        if self._thread is None:
            return
        atexit.unregister(self.close)
        self._stop.set()
        self._thread.join(timeout)
        self.flush(wait_s=timeout)
        if self._unconfirmed and self._redis_down:
            self.flush(redis_gone=True)
