"""Shared fixtures: a migrated database (SQLite and PostgreSQL), a real Redis, the app and CLI."""

import os
import uuid

import psycopg
import pytest
import redis as redis_lib
from click.testing import CliRunner

from precache.config import load_settings
from precache.context import Context
from precache.db import upgrade
from web import create_app

# Hot cache, locks and jobs; the Celery broker apart, so flushing the cache keeps queues.
# Override both to run two test sessions side by side without flushing each other's data.
REDIS_URL = os.environ.get("PRECACHE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
BROKER_URL = os.environ.get("PRECACHE_TEST_BROKER_URL", "redis://127.0.0.1:6379/14")
PG_SERVER = "postgresql://postgres@127.0.0.1:5432"


def _create_pg_database() -> str:
    name = f"precache_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name


def _drop_pg_database(name: str) -> None:
    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def migrated_database(kind: str, tmp_path):
    """Yield the URL of a fresh database of `kind`, built by `alembic upgrade head`."""
    if kind == "sqlite":
        url = f"sqlite:///{tmp_path / 'precache.db'}"
        upgrade(url)
        yield url
        return
    name = _create_pg_database()
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    try:
        upgrade(url)
        yield url
    finally:
        _drop_pg_database(name)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    yield from migrated_database(request.param, tmp_path)


@pytest.fixture
def redis_client():
    client = redis_lib.Redis.from_url(REDIS_URL)
    client.flushdb()
    redis_lib.Redis.from_url(BROKER_URL).flushdb()
    yield client
    client.close()


@pytest.fixture
def config(database_url, redis_client, tmp_path) -> dict:
    """Settings overrides for a test: its own database, the test Redis databases, small outputs."""
    return {
        "database_url": database_url,
        "redis_url": REDIS_URL,
        "broker_url": BROKER_URL,
        "var_dir": tmp_path / "var",
        "llm_max_tokens_quick": 24,
    }


@pytest.fixture
def ctx(config):
    """A context (SQL, Redis, store, jobs) on the test's database."""
    ctx = Context(load_settings(**config))
    yield ctx
    ctx.close()


@pytest.fixture
def app(config):
    app = create_app(config)
    yield app
    app.extensions["precache"].close()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(config, monkeypatch):
    for key, value in config.items():
        monkeypatch.setenv(f"PRECACHE_{key.upper()}", str(value))
    return CliRunner()


def store_question(ctx, text: str) -> tuple[int, str]:
    """Store a question as the ladder would; return (question id, its hash)."""
    from precache.normalize import normalize, question_hash

    normalized = normalize(text)
    return ctx.store.ensure_question(text, normalized, question_hash(normalized)), question_hash(normalized)
