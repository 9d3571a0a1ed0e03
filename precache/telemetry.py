"""Generation totals kept in Redis by workers and read by the web's /metrics."""

import logging

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from precache import keys

log = logging.getLogger(__name__)


def record_generation(redis_client, backend: str, worker: str, seconds: float, tokens: int) -> None:
    """Add one generation to the totals of (backend, worker)."""
    label = f"{backend}|{worker}"
    try:
        pipe = redis_client.pipeline()
        pipe.hincrby(keys.generation_stats(), f"{label}|count", 1)
        pipe.hincrbyfloat(keys.generation_stats(), f"{label}|seconds", seconds)
        pipe.hincrby(keys.generation_stats(), f"{label}|tokens", tokens)
        pipe.execute()
    except Exception as exc:  # telemetry never fails a generation
        log.warning("cannot record generation totals: %s", exc)


def record_batch(redis_client, backend: str, worker: str) -> None:
    """Count one backend call (a batch of answers generated together)."""
    try:
        redis_client.hincrby(keys.generation_stats(), f"{backend}|{worker}|batches", 1)
    except Exception as exc:
        log.warning("cannot record generation totals: %s", exc)


def _totals(redis_client) -> dict[tuple[str, str], dict[str, float]]:
    totals: dict[tuple[str, str], dict[str, float]] = {}
    for field, value in redis_client.hgetall(keys.generation_stats()).items():
        backend, worker, what = field.decode().split("|")
        totals.setdefault((backend, worker), {})[what] = float(value)
    return totals


def generation_totals(redis_client):
    """Yield Prometheus families for generations, their seconds, tokens and tokens/s."""
    labels = ["backend", "worker"]
    count = CounterMetricFamily("precache_generations", "Answers generated.", labels=labels)
    seconds = CounterMetricFamily("precache_generation_seconds", "Time spent generating.", labels=labels)
    tokens = CounterMetricFamily("precache_generated_tokens", "Tokens generated.", labels=labels)
    batches = CounterMetricFamily("precache_generation_batches", "Backend calls (batches) made.", labels=labels)
    rate = GaugeMetricFamily("precache_generation_tokens_per_second", "Mean generation speed.", labels=labels)
    for key, t in sorted(_totals_or_none(redis_client).items()):
        count.add_metric(list(key), t.get("count", 0))
        seconds.add_metric(list(key), t.get("seconds", 0))
        tokens.add_metric(list(key), t.get("tokens", 0))
        batches.add_metric(list(key), t.get("batches", 0))
        rate.add_metric(list(key), t.get("tokens", 0) / t["seconds"] if t.get("seconds") else 0)
    yield from (count, seconds, tokens, batches, rate)


def _totals_or_none(redis_client) -> dict:
    """The totals; none when Redis cannot give them (the families are still exposed, empty)."""
    try:
        return _totals(redis_client)
    except Exception:
        return {}
