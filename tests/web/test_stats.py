"""GET /v1/stats after real asks through the app, its window_s validation, and GET /dashboard."""

import numpy as np
import pytest
from sqlalchemy import func, select

from precache.models import AskLog
from precache.queueing import ALL_QUEUES
from web.responses import StatsResponse

TEMPLATE_ASKS = ["hello", "thanks", "help"]
MISSES = ["How do I export my invoices?", "Can I change my billing date?"]


@pytest.fixture
def asked(app, client):
    for question in TEMPLATE_ASKS:
        assert client.post("/v1/ask", json={"question": question}).json["source"] == "template"
    for question in MISSES:
        assert client.post("/v1/ask", json={"question": question}).status_code == 202
    return app.extensions["precache"]


def ask_log(ctx, query):
    with ctx.sessions() as session:
        return session.execute(query).all()


def test_stats_after_real_asks_match_the_ask_log(client, asked):
    r = client.get("/v1/stats")
    assert r.status_code == 200 and r.mimetype == "application/json"
    body = r.json
    assert list(body) == list(StatsResponse.model_fields)  # the documented shape, in its order
    StatsResponse.model_validate(body)
    assert body["window_s"] == 3600
    logged = dict(ask_log(asked, select(AskLog.source, func.count()).group_by(AskLog.source)))
    assert logged == {"template": 3, "fallback": 2}
    assert body["asks"] == sum(logged.values()) == 5
    assert {s: v["count"] for s, v in body["sources"].items()} == {
        "exact": 0, "semantic": 0, "template": 3, "generated": 0, "fallback": 2, "renew": 0}
    assert body["sources"]["template"]["share"] == pytest.approx(0.6)
    assert body["instant_share"] == pytest.approx(0.6)


def test_stats_latency_percentiles_are_those_of_the_logged_asks(client, asked):
    body = client.get("/v1/stats").json
    for source in ("template", "fallback"):
        latencies = [v for (v,) in ask_log(asked, select(AskLog.latency_ms).where(AskLog.source == source))]
        expected = np.percentile(latencies, [50, 90, 99])
        assert list(body["sources"][source]["latency_ms"].values()) == pytest.approx(expected, abs=1e-3)
        assert body["sources"][source]["latency_ms"]["p50"] > 0


def test_stats_timeline_queues_and_top_missed(client, asked):
    body = client.get("/v1/stats?window_s=600").json
    assert body["window_s"] == 600 and len(body["timeline"]) == 30
    totals = {s: sum(p["counts"][s] for p in body["timeline"]) for s in body["sources"]}
    assert totals == {s: v["count"] for s, v in body["sources"].items()}
    assert sum(body["timeline"][-1]["counts"].values()) == 5  # all asked within the last 20 s
    # The misses were sent to the quick queue; its exact depth is checked end to end on a Redis of its own
    # (tests/integration/test_dashboard.py): a worker of another test run may share this test broker.
    assert list(body["queues"]) == list(ALL_QUEUES) and all(n >= 0 for n in body["queues"].values())
    assert sorted(body["top_missed"], key=lambda m: m["question"]) == [
        {"question": q, "count": 1} for q in sorted(MISSES)]


def test_stats_on_an_empty_log(client):
    body = client.get("/v1/stats?window_s=60").json
    assert body["asks"] == 0 and body["top_missed"] == [] and body["instant_share"] == 0.0
    assert set(body["sources"]) == {"exact", "semantic", "template", "generated", "fallback", "renew"}


@pytest.mark.parametrize("value", ["60", "604800", "3600"])
def test_window_s_bounds_are_accepted(client, value):
    r = client.get(f"/v1/stats?window_s={value}")
    assert r.status_code == 200 and r.json["window_s"] == int(value)


@pytest.mark.parametrize("value", ["59", "604801", "0", "-60", "1.5", "abc", "", "60s", " 60", "1e3",
                                   "99999999999999999999"])
def test_bad_window_s_is_400_saying_what_is_allowed(client, value):
    r = client.get("/v1/stats", query_string={"window_s": value})
    assert r.status_code == 400
    assert r.json["error"]["code"] == "invalid_field"
    assert r.json["error"]["message"].startswith("window_s: must be a whole number of seconds from 60 to 604800")


def test_stats_with_the_broker_down_still_answers(config):
    from web import create_app

    app = create_app(config | {"broker_url": "redis://127.0.0.1:1/0"})
    try:
        r = app.test_client().get("/v1/stats")
        assert r.status_code == 200 and r.json["queues"] == dict.fromkeys(ALL_QUEUES)
    finally:
        app.extensions["precache"].close()


def test_dashboard_is_html_using_the_local_chart_library(client):
    r = client.get("/dashboard")
    assert r.status_code == 200 and r.mimetype == "text/html"
    page = r.get_data(as_text=True)
    assert '<script src="/static/chart.umd.min.js"></script>' in page
    assert "/v1/stats" in page and "window.precacheCharts" in page
    assert "http://" not in page and "https://" not in page  # nothing from a CDN: works offline
    script = client.get("/static/chart.umd.min.js")
    assert script.status_code == 200 and script.mimetype in ("text/javascript", "application/javascript")
    assert b"Chart.js v4" in script.data[:200]
    script.close()


@pytest.fixture
def two_tenants(config):
    """An app with the admin key where a tenant and an asker without one each missed a question."""
    from web import create_app

    app = create_app(config | {"api_key": "admin-key"})
    client = app.test_client()
    assert client.post("/v1/ask", json={"question": "Where is my parcel?", "tenant": "acme"}).status_code == 202
    assert client.post("/v1/ask", json={"question": "How do I get a refund?"}).status_code == 202
    yield client
    app.extensions["precache"].close()


def missed(body) -> list[str]:
    return [m["question"] for m in body["top_missed"]]


def test_stats_are_one_tenants_own(two_tenants):
    default = two_tenants.get("/v1/stats").json
    assert missed(default) == ["How do I get a refund?"] and default["asks"] == 1
    acme = two_tenants.get("/v1/stats?tenant=acme").json
    assert missed(acme) == ["Where is my parcel?"] and acme["asks"] == 1
    assert two_tenants.get("/v1/stats?tenant=globex").json["asks"] == 0
    assert two_tenants.get("/v1/stats?tenant=a%20b").status_code == 400


def test_every_tenants_stats_take_the_admin_key(two_tenants):
    assert two_tenants.get("/v1/stats?all=true").status_code == 401
    assert two_tenants.get("/v1/stats?all=true", headers={"X-API-Key": "guess"}).status_code == 401
    everyone = two_tenants.get("/v1/stats?all=true", headers={"X-API-Key": "admin-key"}).json
    assert sorted(missed(everyone)) == ["How do I get a refund?", "Where is my parcel?"] and everyone["asks"] == 2
    assert two_tenants.get("/v1/stats?all=false", headers={"X-API-Key": "admin-key"}).json["asks"] == 1


@pytest.mark.parametrize("query", ["all=yes", "all=", "all=true&tenant=acme"])
def test_a_bad_scope_is_400(two_tenants, query):
    r = two_tenants.get(f"/v1/stats?{query}", headers={"X-API-Key": "admin-key"})
    assert r.status_code == 400 and r.json["error"]["message"].startswith("all:")


def test_without_an_admin_key_set_there_is_no_view_of_every_tenant(client):
    r = client.get("/v1/stats?all=true")
    assert r.status_code == 404 and r.json["error"]["code"] == "admin_disabled"
