"""Generation totals kept in Redis by workers and read by /metrics (precache/telemetry.py), on a real Redis."""

import redis as redis_lib

from precache import telemetry
from tests.integration.conftest import free_port


def samples(families) -> dict[tuple[str, tuple], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for family in families for s in family.samples}


def test_totals_add_up_per_backend_and_worker(redis_client):
    telemetry.record_generation(redis_client, "llama_cpp", "w1", 2.0, 40)
    telemetry.record_generation(redis_client, "llama_cpp", "w1", 3.0, 60)
    telemetry.record_batch(redis_client, "llama_cpp", "w1")
    telemetry.record_generation(redis_client, "openai", "w2", 1.0, 5)
    assert telemetry._totals(redis_client) == {
        ("llama_cpp", "w1"): {"count": 2, "seconds": 5.0, "tokens": 100, "batches": 1},
        ("openai", "w2"): {"count": 1, "seconds": 1.0, "tokens": 5},
    }


def test_metrics_give_each_total_and_the_mean_speed(redis_client):
    telemetry.record_generation(redis_client, "llama_cpp", "w1", 2.0, 40)
    telemetry.record_generation(redis_client, "llama_cpp", "w1", 3.0, 60)
    telemetry.record_batch(redis_client, "llama_cpp", "w1")
    got = samples(telemetry.generation_totals(redis_client))
    labels = (("backend", "llama_cpp"), ("worker", "w1"))
    assert got[("precache_generations_total", labels)] == 2
    assert got[("precache_generation_seconds_total", labels)] == 5.0
    assert got[("precache_generated_tokens_total", labels)] == 100
    assert got[("precache_generation_batches_total", labels)] == 1
    assert got[("precache_generation_tokens_per_second", labels)] == 20.0


def test_no_totals_yet_is_no_samples_and_a_speed_of_nothing_is_zero(redis_client):
    assert samples(telemetry.generation_totals(redis_client)) == {}
    telemetry.record_batch(redis_client, "llama_cpp", "w1")  # a batch counted before its answers
    got = samples(telemetry.generation_totals(redis_client))
    assert got[("precache_generation_tokens_per_second", (("backend", "llama_cpp"), ("worker", "w1")))] == 0


def test_redis_away_never_fails_a_generation_nor_a_scrape():
    away = redis_lib.Redis(port=free_port(), socket_connect_timeout=1)
    telemetry.record_generation(away, "llama_cpp", "w1", 1.0, 10)  # logged, not raised
    telemetry.record_batch(away, "llama_cpp", "w1")
    families = list(telemetry.generation_totals(away))
    assert [f.name for f in families] == ["precache_generations", "precache_generation_seconds",
                                          "precache_generated_tokens", "precache_generation_batches",
                                          "precache_generation_tokens_per_second"]
    assert samples(families) == {}
