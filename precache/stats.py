"""Counts for `precache stats`: asks by source, answers stored, queue depths."""

from sqlalchemy import func, select

from precache.models import Answer, AskLog
from precache.queueing import ALL_QUEUES


def collect(ctx) -> dict[str, dict]:
    """Return the stats sections as {section: {name: value}}."""
    with ctx.sessions() as session:
        by_source = dict(session.execute(select(AskLog.source, func.count()).group_by(AskLog.source)).all())
        answers = dict(session.execute(
            select(Answer.curated, func.count()).group_by(Answer.curated)).all())
    total = sum(by_source.values())
    asks = {"total": total}
    for source, count in sorted(by_source.items()):
        asks[source] = f"{count} ({100 * count / total:.1f} %)"
    stored = {"generated": answers.get(False, 0), "curated": answers.get(True, 0)}
    try:
        queues = {name: ctx.redis.llen(name) for name in ALL_QUEUES}
    except Exception as exc:  # the broker may be down; say so instead of failing
        queues = {"unavailable": str(exc)}
    return {"asks": asks, "answers": stored, "queues": queues}
