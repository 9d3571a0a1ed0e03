"""Operator stats: `snapshot` for GET /v1/stats and the dashboard, `collect` for `precache stats`.

`snapshot` covers one tenant's namespace (its asks; the answers it may be served), or every tenant
with `tenant=None` (the admin's view); `collect`, the command line on the machine, covers every tenant.

Everything is computed with portable SQL (SQLite and PostgreSQL): time and quality buckets are
CASE expressions grouped in an outer query; latency percentiles are taken in Python (numpy) from
at most LATENCY_SAMPLE recent asks per source.
"""

from datetime import datetime, timedelta, timezone

import numpy as np
from sqlalchemy import case, func, literal, select, true

from precache import asklog, broker
from precache.app_context import AppContext
from precache.models import Answer, AskLog, utcnow
from precache.queueing import ALL_QUEUES

# "renew": an asker's no-cache, a new answer generated whatever was cached (neither instant nor a miss).
SOURCES = ("exact", "semantic", "template", "generated", "fallback", "renew")
INSTANT_SOURCES = ("exact", "semantic", "template")
MISS_SOURCE = "fallback"
QUALITY_BUCKETS = ("0.0-0.2", "0.2-0.4", "0.4-0.6", "0.6-0.8", "0.8-1.0")
UNSCORED = "unscored"
PERCENTILES = {"p50": 50, "p90": 90, "p99": 99}
LATENCY_SAMPLE = 20_000  # most recent asks per source read for the percentiles
TOP_MISSED = 10


def snapshot(ctx: AppContext, window_s: int, buckets: int = 30, now: datetime | None = None,
             tenant: str | None = None) -> dict:
    """Return the stats of the last `window_s` seconds in the shape of web.responses.StatsResponse: of one
    tenant's namespace ("" = no tenant), or of every tenant when `tenant` is None."""
    if not 1 <= buckets <= 1000:
        raise ValueError(f"buckets must be 1..1000, not {buckets}")
    end = _utc(now or utcnow())
    start = end - timedelta(seconds=window_s)
    asks = true() if tenant is None else AskLog.namespace == ctx.settings.namespace_for(tenant)
    answers = true() if tenant is None else ctx.store.for_tenant(tenant).visible()
    asklog.catch_up(ctx)
    with ctx.sessions() as session:
        counts = _source_counts(session, asks, start, end)
        latencies = {s: _latency_percentiles(session, asks, s, start, end) for s in SOURCES}
        timeline = _timeline(session, asks, start, end, buckets)
        quality = _quality(session, answers)
        top_missed = _top_missed(session, asks, start, end)
    asks = sum(counts.values())
    return {
        "window_s": window_s,
        "asks": asks,
        "instant_share": _share(sum(counts[s] for s in INSTANT_SOURCES), asks),
        "sources": {s: {"count": counts[s], "share": _share(counts[s], asks), "latency_ms": latencies[s]}
                    for s in SOURCES},
        "timeline": timeline,
        "quality": quality,
        "queues": queue_depths(ctx.settings.broker_url),
        "top_missed": top_missed,
    }


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)  # naive means UTC, as stored


def _share(part: int, whole: int) -> float:
    return round(part / whole, 6) if whole else 0.0


def _in_window(query, asks, start: datetime | None, end: datetime | None):
    """The query on the asks in scope (`asks`, an SQL condition) from `start` to `end` (None: open)."""
    query = query.where(asks)
    if start is not None:
        query = query.where(AskLog.asked_at >= start)
    if end is not None:
        query = query.where(AskLog.asked_at <= end)
    return query


def _source_counts(session, asks, start: datetime | None, end: datetime | None) -> dict[str, int]:
    """Asks per source (every known source present, zero when none; unknown ones kept)."""
    query = _in_window(select(AskLog.source, func.count()).group_by(AskLog.source), asks, start, end)
    return dict.fromkeys(SOURCES, 0) | dict(session.execute(query).all())


def _latency_percentiles(session, asks, source: str, start: datetime, end: datetime) -> dict[str, float]:
    """p50/p90/p99 of the latency of the most recent asks of one source; zeros when there are none."""
    query = _in_window(select(AskLog.latency_ms).where(AskLog.source == source), asks, start, end)
    values = session.scalars(query.order_by(AskLog.asked_at.desc()).limit(LATENCY_SAMPLE)).all()
    if not values:
        return dict.fromkeys(PERCENTILES, 0.0)
    points = np.percentile(np.asarray(values, dtype=float), list(PERCENTILES.values()))
    return {name: round(float(p), 3) for name, p in zip(PERCENTILES, points)}


def _timeline(session, asks, start: datetime, end: datetime, buckets: int) -> list[dict]:
    """Asks per source in `buckets` equal slices of [start, end], oldest first."""
    width = (end - start) / buckets
    edges = [start + width * i for i in range(1, buckets)]
    whens = [(AskLog.asked_at < edge, literal(i)) for i, edge in enumerate(edges)]
    index = case(*whens, else_=literal(buckets - 1)) if whens else literal(0)
    inner = _in_window(select(index.label("bucket"), AskLog.source), asks, start, end).subquery()
    query = select(inner.c.bucket, inner.c.source, func.count()).group_by(inner.c.bucket, inner.c.source)
    points = [{"t": _iso(start + width * i), "counts": dict.fromkeys(SOURCES, 0)} for i in range(buckets)]
    for bucket, source, count in session.execute(query):
        points[int(bucket)]["counts"][source] = count
    return points


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _quality(session, answers) -> dict[str, int]:
    """Stored answers in scope (`answers`, an SQL condition) by quality bucket ("0.0-0.2" ... "0.8-1.0") and
    "unscored" (no quality)."""
    whens = [(Answer.quality.is_(None), literal(UNSCORED))]
    whens += [(Answer.quality < (i + 1) / len(QUALITY_BUCKETS), literal(name))
              for i, name in enumerate(QUALITY_BUCKETS[:-1])]
    inner = select(case(*whens, else_=literal(QUALITY_BUCKETS[-1])).label("bucket")).where(answers).subquery()
    rows = session.execute(select(inner.c.bucket, func.count()).group_by(inner.c.bucket)).all()
    return dict.fromkeys((*QUALITY_BUCKETS, UNSCORED), 0) | dict(rows)


def _top_missed(session, asks, start: datetime, end: datetime) -> list[dict]:
    """The questions most often answered with the fallback: the candidates to precompute."""
    count = func.count().label("n")
    query = _in_window(
        select(func.min(AskLog.question), count).where(AskLog.source == MISS_SOURCE).group_by(AskLog.qhash),
        asks, start, end,
    ).order_by(count.desc(), func.min(AskLog.question)).limit(TOP_MISSED)
    return [{"question": question, "count": n} for question, n in session.execute(query)]


def queue_depths(broker_url: str) -> dict[str, int | None]:
    """Messages waiting in each Celery queue (Redis or AMQP broker); None for every queue when it is unreachable."""
    return broker.depths(broker_url, ALL_QUEUES)


def collect(ctx: AppContext) -> dict[str, dict]:
    """Return the `precache stats` sections as {section: {name: value}}: all-time asks of every tenant, answers,
    queues."""
    asklog.catch_up(ctx)
    with ctx.sessions() as session:
        by_source = {s: n for s, n in _source_counts(session, true(), None, None).items() if n}
        answers = dict(session.execute(select(Answer.curated, func.count()).group_by(Answer.curated)).all())
    total = sum(by_source.values())
    asks = {"total": total} | {s: f"{n} ({100 * n / total:.1f} %)" for s, n in sorted(by_source.items())}
    stored = {"generated": answers.get(False, 0), "curated": answers.get(True, 0)}
    queues = {name: "unavailable" if n is None else n for name, n in queue_depths(ctx.settings.broker_url).items()}
    return {"asks": asks, "answers": stored, "queues": queues}
