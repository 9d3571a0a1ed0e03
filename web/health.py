"""GET /healthz (liveness) and GET /readyz (each dependency's state: ready, degraded or unavailable)."""

from celery import Celery
from flask import Blueprint, current_app, jsonify
from sqlalchemy import Engine, text

from precache.db import check_schema

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    return jsonify({"status": "ok"})


def _check(probe) -> dict:
    try:
        probe()
        return {"ok": True}
    except Exception as exc:  # any failure means "not ready", with the reason shown
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}


@bp.get("/readyz")
def readyz():
    ctx = current_app.extensions["precache"]
    checks = {"redis": _check(ctx.redis.ping), "database": _check(lambda: _database(ctx.engine)),
              "broker": _check(lambda: _broker(ctx.jobs.celery))}
    if all(c["ok"] for c in checks.values()):
        return jsonify({"status": "ready", "checks": checks})
    # With one of Redis and SQL up every ask is still answered and recorded: degraded, not out of service.
    if checks["redis"]["ok"] or checks["database"]["ok"]:
        return jsonify({"status": "degraded", "checks": checks})
    return jsonify({"status": "unavailable", "checks": checks}), 503


def _database(engine: Engine) -> None:
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    check_schema(engine)  # reachable but not migrated: no answer can be stored or read


def _broker(celery: Celery) -> None:
    with celery.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)
