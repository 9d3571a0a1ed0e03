"""Every Redis key precache uses, in one place.

Redis database numbers: the URL in PRECACHE_REDIS_URL picks one (default 0) and holds the
hot cache, locks and job records; the Celery broker uses PRECACHE_BROKER_URL (default: the
same database). The test suite uses database 15.
"""

PREFIX = "precache"


def answer(ns: str, qhash: str) -> str:
    """Hot-cache entry: the JSON of the answer served for a question."""
    return f"{PREFIX}:answer:{ns}:{qhash}"


def pending(ns: str, qhash: str, kind: str = "quick") -> str:
    """Single-flight lock: holds the id of the job of this kind (quick, detailed, refresh) for a question."""
    return f"{PREFIX}:pending:{ns}:{qhash}:{kind}"


def job(job_id: str) -> str:
    """Job record (a hash): status, question id, answer id."""
    return f"{PREFIX}:job:{job_id}"


def sent_jobs() -> str:
    """Sorted set of unfinished jobs, scored by when their last message was sent (the sweep finds lost ones)."""
    return f"{PREFIX}:jobs:sent"


def job_done(job_id: str) -> str:
    """Pub/sub channel announcing that a job finished."""
    return f"{PREFIX}:done:{job_id}"


def generations(level: str = "quick") -> str:
    """Counter of generations of one answer level run by workers (all namespaces)."""
    return f"{PREFIX}:count:generations:{level}"


def generation_stats() -> str:
    """Hash of generation totals per backend and worker: "<backend>|<worker>|count|seconds|tokens|batches"."""
    return f"{PREFIX}:stats:generation"


def semantic_version() -> str:
    """Counter bumped whenever a question embedding is stored; web processes reload their index when it moves."""
    return f"{PREFIX}:semantic:version"


def inflight(ns: str) -> str:
    """Hash of questions being generated: job id -> question text and embedding (paraphrases join)."""
    return f"{PREFIX}:inflight:{ns}"


def semantic_epoch() -> str:
    """Counter bumped when cached questions change groups (linked paraphrases); web processes rebuild their index."""
    return f"{PREFIX}:semantic:epoch"


def scheduled_lock(name: str) -> str:
    """Lock held while a scheduled job runs: a second copy started at the same time does nothing."""
    return f"{PREFIX}:lock:scheduled:{name}"


def outbox() -> str:
    """List of new questions kept while the database is unreachable; the sweep writes them to SQL."""
    return f"{PREFIX}:outbox"


def asks() -> str:
    """List of asks on their way to the SQL ask log (precache.asklog writes them in batches)."""
    return f"{PREFIX}:asks"


def asks_lock() -> str:
    """Lock held by the one process writing the list of asks to SQL."""
    return f"{PREFIX}:lock:asks"


def asks_written() -> str:
    """Counter of asks written from the list to SQL since the list began (precache.ask_writer.Writer)."""
    return f"{PREFIX}:asks:written"


def asks_epoch() -> str:
    """Random id set by the first ask pushed to this Redis: a new one means Redis lost the list."""
    return f"{PREFIX}:asks:epoch"


def asks_refused() -> str:
    """List of ask log entries the database refused to store (kept for a person to look at)."""
    return f"{PREFIX}:asks:refused"


def failures(ns: str, qhash: str) -> str:
    """Counter of failed generation jobs of a question; the sweep stops queueing it at a bound."""
    return f"{PREFIX}:failures:{ns}:{qhash}"


def generating(ns: str, qhash: str) -> str:
    """Hash of a question's generations that began (`started`) and returned (`ended`): the difference
    is how many the worker died during; a question that keeps killing it is given up."""
    return f"{PREFIX}:generating:{ns}:{qhash}"


def sweep_lock() -> str:
    """Held while one sweep runs, so two never write the same outbox entries."""
    return f"{PREFIX}:lock:sweep"


def rate_limits() -> str:
    """Prefix of the per-client rate-limit counters (Flask-Limiter)."""
    return f"{PREFIX}:ratelimit"


def feedback_version() -> str:
    """Counter bumped whenever feedback is recorded; web processes load the new rows into their evidence."""
    return f"{PREFIX}:semantic:feedback"


def tokens(job_id: str) -> str:
    """Redis Stream of a job's answer as the worker generates it: entries {"t": text} then {"end": reason}."""
    return f"{PREFIX}:tokens:{job_id}"


def rewrite(ns: str, context_hash: str) -> str:
    """A conversation's follow-up made standalone, keyed by the conversation so far and the message."""
    return f"{PREFIX}:rewrite:{ns}:{context_hash}"


def worker_alive(worker_id: str) -> str:
    """Set by a live generation worker process, with a short TTL it renews (precache.liveness)."""
    return f"{PREFIX}:worker:alive:{worker_id}"


def worker_held(worker_id: str) -> str:
    """Hash of the generation jobs a worker process received and has not finished: job id -> what to resend."""
    return f"{PREFIX}:worker:held:{worker_id}"


def worker_claimed(worker_id: str) -> str:
    """A dead worker's held jobs, renamed by the one process that sends them again."""
    return f"{PREFIX}:worker:claimed:{worker_id}"


def open_streams(client: str) -> str:
    """Sorted set of a client's open streams (web/caps.py), each scored by the time it ends at the latest."""
    return f"{PREFIX}:caps:streams:{client}"


def new_questions(client: str, minute: int) -> str:
    """Count of the new questions a client asked in one minute (web/caps.py)."""
    return f"{PREFIX}:caps:new:{client}:{minute}"


def feedback_epoch() -> str:
    """Moved when feedback rows are deleted (an admin withdrew negatives, the prune job): web processes rebuild
    their evidence from what is left, instead of adding the new rows to it."""
    return f"{PREFIX}:semantic:feedback:epoch"
