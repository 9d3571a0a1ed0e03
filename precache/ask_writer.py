"""Each web process's ask-log writer: pushes its asks, remembers them until they are in SQL, drains the list.

The list, the lock and the SQL batches are precache/asklog.py; this is the thread of one process
that runs them every ASK_LOG_FLUSH_MS and writes the asks a Redis lost with its data.
"""

import atexit
import json
import logging
import threading
import uuid
from collections import deque

import redis
from sqlalchemy.exc import SQLAlchemyError

from precache import asklog, keys
from precache.app_context import AppContext

log = logging.getLogger(__name__)
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

    def __init__(self, ctx: AppContext, interval_s: float):
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
                written = asklog.drain(self.ctx, wait_s) if not redis_gone else 0
                written += self._settle(redis_gone)
            except (SQLAlchemyError, redis.RedisError) as exc:
                if not self._failing:  # an outage is logged when it starts
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
        done, lost = _sort_out(mine, *self._list_state(redis_gone))
        lost = asklog.unwritten(self.ctx.sessions, lost)
        if lost:
            asklog.keep_aside(self.ctx.redis, asklog.write(self.ctx.sessions, lost))
            log.warning("Redis lost %d asks before they were written; written from this process", len(lost))
        with self._lock:  # the ones looked at (a push may have dropped some of them meanwhile, at the cap)
            for item in mine[:done]:
                if self._unconfirmed and self._unconfirmed[0] is item:
                    self._unconfirmed.popleft()
        return len(lost)

    def _list_state(self, redis_gone: bool) -> tuple:
        """The ask list's (epoch, asks written from it, asks waiting in it)."""
        if redis_gone:
            return None, 0, 0
        with self.ctx.redis.pipeline() as pipe:
            epoch, written, waiting = pipe.get(keys.asks_epoch()).get(keys.asks_written()).llen(keys.asks()).execute()
        return epoch, int(written or 0), waiting

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


def _sort_out(mine: list, epoch, written: int, waiting: int) -> tuple[int, list]:
    """Return (how many of the oldest asks are settled, the entries among them Redis lost)."""
    done, lost = 0, []
    for ask_epoch, position, entry in mine:
        if ask_epoch == epoch and position <= written:
            done += 1
        elif ask_epoch == epoch and position <= written + waiting:
            break  # this one and the later ones still wait in the list
        else:
            lost.append(entry)
            done += 1
    return done, lost
