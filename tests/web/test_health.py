import pytest

from web import create_app


def test_healthz(client):
    assert client.get("/healthz").json == {"status": "ok"}


def test_readyz_reports_each_dependency(client):
    r = client.get("/readyz")
    assert r.status_code == 200
    assert {k: v["ok"] for k, v in r.json["checks"].items()} == {"redis": True, "database": True, "broker": True}


def test_readyz_is_degraded_but_200_when_redis_is_unreachable(config):
    app = create_app(config | {"redis_url": "redis://127.0.0.1:1/0", "broker_url": "redis://127.0.0.1:1/1"})
    r = app.test_client().get("/readyz")
    assert r.status_code == 200 and r.json["status"] == "degraded"  # asks are still answered from SQL
    assert r.json["checks"]["redis"]["ok"] is False and r.json["checks"]["database"]["ok"] is True
    app.extensions["precache"].close()


def test_readyz_is_503_when_neither_redis_nor_the_database_answers(config, tmp_path):
    app = create_app(config | {"redis_url": "redis://127.0.0.1:1/0", "broker_url": "redis://127.0.0.1:1/1",
                               "database_url": "postgresql+psycopg://postgres:secret@127.0.0.1:1/none"})
    r = app.test_client().get("/readyz")
    assert r.status_code == 503 and r.json["status"] == "unavailable"
    assert "secret" not in r.get_data(as_text=True)
    app.extensions["precache"].close()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_readyz_is_degraded_when_the_database_is_not_migrated(config, tmp_path):
    app = create_app(config | {"database_url": f"sqlite:///{tmp_path / 'empty.db'}"})
    r = app.test_client().get("/readyz")
    assert r.status_code == 200 and r.json["status"] == "degraded"  # asks are answered and kept in Redis
    assert r.json["checks"]["database"]["ok"] is False
    assert "run `precache db upgrade`" in r.json["checks"]["database"]["error"]
    app.extensions["precache"].close()
