"""precache.stats.snapshot on a seeded ask log (SQLite and PostgreSQL), and `collect` for the CLI."""

from datetime import datetime, timedelta, timezone

import uuid

import numpy as np
import pytest
import redis as redis_lib

from precache.config import load_settings
from precache.context import Context
from precache.models import Answer, AskLog, Question
from precache.normalize import normalize, question_hash
from precache import stats
from precache.queueing import ALL_QUEUES
from precache.stats import SOURCES, collect, snapshot
from tests.conftest import BROKER_URL
from web.responses import StatsResponse

NOW = datetime(2025, 3, 1, 12, 0, 0, tzinfo=timezone.utc)


def ask(question: str, source: str, latency_ms: float, seconds_ago: float) -> AskLog:
    qhash = question_hash(normalize(question))
    return AskLog(asked_at=NOW - timedelta(seconds=seconds_ago), question=question, qhash=qhash,
                  namespace="ns", source=source, latency_ms=latency_ms)


def seed(ctx, rows) -> None:
    with ctx.sessions() as session:
        session.add_all(rows)
        session.commit()


def seed_answers(ctx, qualities) -> None:
    with ctx.sessions() as session:
        question = Question(qhash="h" * 64, text="q", normalized="q")
        session.add(question)
        session.add_all(Answer(question=question, namespace="ns", level="quick", text="a", quality=q)
                        for q in qualities)
        session.commit()


@pytest.fixture
def seeded(ctx):
    exact = [ask(f"exact {i}", "exact", float(i), seconds_ago=i) for i in range(1, 101)]  # 1..100 ms
    template = [ask("hello", "template", 2.0, seconds_ago=30) for _ in range(10)]
    misses = [ask(q, "fallback", 20.0 + n, seconds_ago=60 * n)
              for n, q in enumerate(["What is X?", "what is x", "what is X", "Why Y?", "Why Y?", "Zed?"])]
    old = [ask("What is X?", "fallback", 5.0, seconds_ago=3601), ask("old", "exact", 9999.0, seconds_ago=7200)]
    seed(ctx, exact + template + misses + old)
    return ctx


def test_counts_shares_and_instant_share(seeded):
    s = snapshot(seeded, 3600, now=NOW)
    StatsResponse.model_validate(s)
    counts = {name: v["count"] for name, v in s["sources"].items()}
    assert counts == {"exact": 100, "semantic": 0, "template": 10, "generated": 0, "fallback": 6, "renew": 0}
    assert s["asks"] == 116 and s["window_s"] == 3600
    assert s["sources"]["exact"]["share"] == pytest.approx(100 / 116, abs=1e-6)
    assert s["instant_share"] == pytest.approx(110 / 116, abs=1e-6)
    assert sum(v["share"] for v in s["sources"].values()) == pytest.approx(1, abs=1e-5)


def test_latency_percentiles_per_source_and_zero_when_none(seeded):
    s = snapshot(seeded, 3600, now=NOW)
    expected = np.percentile(np.arange(1, 101, dtype=float), [50, 90, 99])
    assert list(s["sources"]["exact"]["latency_ms"].values()) == pytest.approx(expected, abs=1e-3)
    assert s["sources"]["exact"]["latency_ms"]["p50"] == pytest.approx(50.5)
    assert s["sources"]["template"]["latency_ms"] == {"p50": 2.0, "p90": 2.0, "p99": 2.0}
    assert s["sources"]["semantic"]["latency_ms"] == {"p50": 0.0, "p90": 0.0, "p99": 0.0}
    assert s["sources"]["exact"]["latency_ms"]["p99"] < 9999  # the ask before the window is not counted


def test_timeline_buckets_are_equal_slices_oldest_first(ctx):
    seed(ctx, [ask("a", "exact", 1, seconds_ago=599), ask("b", "exact", 1, seconds_ago=501),
               ask("c", "template", 1, seconds_ago=450), ask("d", "fallback", 1, seconds_ago=0),
               ask("e", "generated", 1, seconds_ago=100.5), ask("f", "exact", 1, seconds_ago=601)])
    s = snapshot(ctx, 600, buckets=6, now=NOW)
    assert [p["t"] for p in s["timeline"]] == [f"2025-03-01T11:{m}:{sec}Z" for m, sec in
                                               [(50, "00"), (51, 40), (53, 20), (55, "00"), (56, 40), (58, 20)]]
    assert all(set(p["counts"]) == set(SOURCES) for p in s["timeline"])
    assert [sum(p["counts"].values()) for p in s["timeline"]] == [2, 1, 0, 0, 1, 1]
    assert s["timeline"][1]["counts"]["template"] == 1 and s["timeline"][5]["counts"]["fallback"] == 1
    assert sum(sum(p["counts"].values()) for p in s["timeline"]) == s["asks"] == 5


def test_default_thirty_buckets_and_one_bucket(seeded):
    assert len(snapshot(seeded, 3600, now=NOW)["timeline"]) == 30
    (only,) = snapshot(seeded, 3600, buckets=1, now=NOW)["timeline"]
    assert only["t"] == "2025-03-01T11:00:00Z" and sum(only["counts"].values()) == 116


def test_top_missed_groups_by_question_hash_within_the_window(seeded):
    top = snapshot(seeded, 3600, now=NOW)["top_missed"]
    assert [m["count"] for m in top] == [3, 2, 1]
    assert top[0]["question"] in {"What is X?", "what is x", "what is X"}  # one of its spellings
    assert [m["question"] for m in top[1:]] == ["Why Y?", "Zed?"]


def test_top_missed_keeps_the_ten_most_missed(ctx):
    seed(ctx, [ask(f"question {i}", "fallback", 1, seconds_ago=10) for i in range(12) for _ in range(i + 1)])
    top = snapshot(ctx, 3600, now=NOW)["top_missed"]
    assert [m["question"] for m in top] == [f"question {i}" for i in range(11, 1, -1)]
    assert [m["count"] for m in top] == list(range(12, 2, -1))


def test_quality_distribution_of_stored_answers(ctx):
    seed_answers(ctx, [0.05, 0.2, 0.39, 0.5, 0.6, 0.79, 0.8, 0.95, 1.0, None, None])
    assert snapshot(ctx, 3600, now=NOW)["quality"] == {
        "0.0-0.2": 1, "0.2-0.4": 2, "0.4-0.6": 1, "0.6-0.8": 2, "0.8-1.0": 3, "unscored": 2}


def test_empty_database(ctx):
    s = snapshot(ctx, 3600)
    StatsResponse.model_validate(s)
    assert s["asks"] == 0 and s["instant_share"] == 0.0 and s["top_missed"] == []
    assert all(v == {"count": 0, "share": 0.0, "latency_ms": {"p50": 0.0, "p90": 0.0, "p99": 0.0}}
               for v in s["sources"].values())
    assert len(s["timeline"]) == 30 and all(sum(p["counts"].values()) == 0 for p in s["timeline"])
    assert set(s["quality"].values()) == {0}
    assert list(s["queues"]) == list(ALL_QUEUES)  # depths are those of the shared test broker
    assert all(isinstance(n, int) and n >= 0 for n in s["queues"].values())


def test_queue_depths_are_read_from_the_broker_not_the_cache(ctx, monkeypatch):
    # Queue names of this test alone: a Celery worker of another test run may share the test broker.
    names = tuple(f"test-stats-{uuid.uuid4().hex}-{name}" for name in ALL_QUEUES)
    monkeypatch.setattr(stats, "ALL_QUEUES", names)
    broker = redis_lib.Redis.from_url(BROKER_URL)
    try:
        broker.rpush(names[0], "m1", "m2", "m3")
        broker.rpush(names[2], "m")
        ctx.redis.rpush(names[1], "not on the broker")
        assert snapshot(ctx, 3600)["queues"] == dict(zip(names, [3, 0, 1, 0]))
    finally:
        broker.delete(*names)
        ctx.redis.delete(*names)
        broker.close()


@pytest.mark.parametrize("broker_url", ["redis://127.0.0.1:1/0", "amqp://guest@127.0.0.1:1//"])
def test_unreachable_broker_gives_none_queues(config, broker_url):
    ctx = Context(load_settings(**config | {"broker_url": broker_url}))
    try:
        s = snapshot(ctx, 3600)
        assert s["queues"] == dict.fromkeys(ALL_QUEUES) and StatsResponse.model_validate(s)
        assert collect(ctx)["queues"] == dict.fromkeys(ALL_QUEUES, "unavailable")
    finally:
        ctx.close()


def test_collect_for_the_cli_counts_every_ask(seeded):
    sections = collect(seeded)
    assert sections["asks"]["total"] == 118
    assert sections["asks"]["fallback"] == f"7 ({100 * 7 / 118:.1f} %)"
    assert "semantic" not in sections["asks"]  # the CLI lists only sources that answered
    assert sections["answers"] == {"generated": 0, "curated": 0}
    assert list(sections["queues"]) == list(ALL_QUEUES)


def test_rejects_a_bucket_count_out_of_range(ctx):
    with pytest.raises(ValueError, match="buckets"):
        snapshot(ctx, 3600, buckets=0)


def test_queue_depths_are_read_from_a_rabbitmq_broker_too():
    from kombu import Connection, Exchange, Queue

    from precache.broker import depths

    url, name = "amqp://guest:guest@127.0.0.1:5672//", "precache-test-depths"
    queue = Queue(name, Exchange(name), routing_key=name)
    with Connection(url) as conn:
        queue(conn.channel()).declare()
        producer = conn.Producer()
        for i in range(3):
            producer.publish({"n": i}, exchange=queue.exchange, routing_key=name, declare=[queue])
        try:
            assert depths(url, [name, "precache-no-such-queue"]) == {name: 3, "precache-no-such-queue": None}
        finally:
            queue(conn.channel()).delete()


def test_a_tenants_snapshot_holds_its_own_asks_and_answers_only(ctx):
    acme, other = ctx.settings.namespace_for("acme"), ctx.settings.namespace_for("")
    rows = [ask("Where is my parcel?", "fallback", 20.0, seconds_ago=10), ask("hello", "template", 2.0, seconds_ago=5),
            ask("Refund?", "fallback", 30.0, seconds_ago=10)]
    rows[0].namespace, rows[1].namespace, rows[2].namespace = acme, acme, other
    seed(ctx, rows)
    with ctx.sessions() as session:
        question = Question(qhash="p" * 64, text="q", normalized="q")
        session.add_all([Answer(question=question, namespace=acme, level="quick", text="a", quality=0.9),
                         Answer(question=question, namespace=other, level="quick", text="b", quality=0.1),
                         Answer(question=question, namespace=other, level="quick", text="c", curated=True,
                                tenant="acme")])
        session.commit()
    s = snapshot(ctx, 3600, now=NOW, tenant="acme")
    assert s["asks"] == 2 and s["top_missed"] == [{"question": "Where is my parcel?", "count": 1}]
    assert s["quality"]["0.8-1.0"] == 1 and s["quality"]["unscored"] == 1 and s["quality"]["0.0-0.2"] == 0
    assert snapshot(ctx, 3600, now=NOW, tenant="")["top_missed"] == [{"question": "Refund?", "count": 1}]
    assert snapshot(ctx, 3600, now=NOW)["asks"] == 3  # every tenant
    assert collect(ctx)["asks"]["total"] == 3  # the command line's view stays every tenant's
