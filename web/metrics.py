"""Prometheus metrics of the web process, and GET /metrics (multiprocess-safe under gunicorn)."""

import os

import redis
from flask import Blueprint, Response, current_app
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client import multiprocess
from prometheus_client.core import GaugeMetricFamily

from precache.stats import queue_depths
from precache.telemetry import generation_totals

bp = Blueprint("metrics", __name__)

ASKS = Counter("precache_asks", "Asks answered, by the tier that answered.", ["source"])
LATENCY = Histogram(
    "precache_ask_latency_seconds", "Time to answer an ask, by source.", ["source"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
MISSES = Counter("precache_misses_enqueued", "Misses that started a generation job.")
JOINS = Counter("precache_single_flight_joins", "Misses that joined a job already running for the question.")
QUALITY = Histogram("precache_served_quality", "Quality score of answers served from the cache.",
                    buckets=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0))
STALE = Counter("precache_answers_served_stale", "Answers served past their refresh time (answer TTL).")


def observe_ask(source: str, seconds: float, quality: float | None, stale: bool) -> None:
    """Record one answered ask."""
    ASKS.labels(source).inc()
    LATENCY.labels(source).observe(seconds)
    if quality is not None and source in ("exact", "semantic", "generated"):
        QUALITY.observe(quality)
    if stale:
        STALE.inc()


class LiveCollector:
    """Values read at scrape time: queue depths from the broker, generation totals from Redis."""

    def __init__(self, broker_url: str, redis_client: redis.Redis):
        self.broker_url, self.redis = broker_url, redis_client

    def collect(self):
        depth = GaugeMetricFamily("precache_queue_depth", "Messages waiting per Celery queue.", labels=["queue"])
        for queue, value in queue_depths(self.broker_url).items():
            if value is not None:  # an unreachable broker shows as missing series, not a failed scrape
                depth.add_metric([queue], value)
        yield depth
        yield from generation_totals(self.redis)


@bp.get("/metrics")
def metrics():
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)
    else:
        from prometheus_client import REGISTRY

        registry = REGISTRY
    live = CollectorRegistry(auto_describe=False)
    ctx = current_app.extensions["precache"]
    live.register(LiveCollector(ctx.settings.broker_url, ctx.redis))
    body = generate_latest(registry) + generate_latest(live)
    return Response(body, mimetype=CONTENT_TYPE_LATEST)
