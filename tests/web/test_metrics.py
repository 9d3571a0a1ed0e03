import re

from precache.telemetry import record_generation


def _value(text: str, name: str, labels: str = "") -> float:
    match = re.search(rf"^{re.escape(name + labels)} (\S+)$", text, re.M)
    return float(match.group(1)) if match else 0.0


def test_asks_are_counted_by_source_with_latency(client):
    before = client.get("/metrics").text
    client.post("/v1/ask", json={"question": "hello"})
    client.post("/v1/ask", json={"question": "thank you"})
    client.post("/v1/ask", json={"question": "Something nobody asked before?"})
    client.post("/v1/ask", json={"question": "something nobody asked before"})
    after = client.get("/metrics")
    assert after.status_code == 200 and after.mimetype == "text/plain"
    text = after.text
    for source, n in (("template", 2), ("fallback", 2)):
        label = f'{{source="{source}"}}'
        assert _value(text, "precache_asks_total", label) - _value(before, "precache_asks_total", label) == n
        count = "precache_ask_latency_seconds_count"
        assert _value(text, count, label) - _value(before, count, label) == n
    assert _value(text, "precache_misses_enqueued_total") - _value(before, "precache_misses_enqueued_total") == 1
    joins = "precache_single_flight_joins_total"
    assert _value(text, joins) - _value(before, joins) == 1


def test_queue_depths_come_from_the_broker(client):
    client.post("/v1/ask", json={"question": "A question left in the queue?"})
    text = client.get("/metrics").text
    assert _value(text, "precache_queue_depth", '{queue="quick"}') == 1
    assert 'precache_queue_depth{queue="housekeeping"} 0.0' in text


def test_generation_totals_from_workers_are_exposed(app, client):
    redis = app.extensions["precache"].redis
    record_generation(redis, "llama_cpp", "gpu0@host", 2.0, 100)
    record_generation(redis, "llama_cpp", "gpu0@host", 2.0, 60)
    text = client.get("/metrics").text
    labels = '{backend="llama_cpp",worker="gpu0@host"}'
    assert _value(text, "precache_generations_total", labels) == 2
    assert _value(text, "precache_generated_tokens_total", labels) == 160
    assert _value(text, "precache_generation_tokens_per_second", labels) == 40


def test_scrape_survives_an_unreachable_broker(config):
    from web import create_app

    app = create_app(config | {"broker_url": "redis://127.0.0.1:1/0"})
    r = app.test_client().get("/metrics")
    assert r.status_code == 200 and "precache_asks_total" in r.text
    app.extensions["precache"].close()
