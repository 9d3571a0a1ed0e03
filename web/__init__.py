"""The web process: a thin Flask app that answers every question at once."""

import logging

from flask import Flask, request

from precache import logs
from precache.config import load_settings
from precache.context import Context
from precache.db import report_schema
from precache.semantic.tier import SemanticTier
from web.intents import load_intents


def create_app(test_config: dict | None = None) -> Flask:
    """Build the app; `test_config` overrides settings fields (tests pass their own)."""
    app = Flask(__name__)
    settings = load_settings(**(test_config or {}))
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json.sort_keys = False
    app.extensions["precache"] = Context(settings)
    app.extensions["precache_intents"] = load_intents(settings.templates_file)
    app.extensions["precache_semantic"] = SemanticTier(settings)
    app.extensions["precache_semantic"].warm()
    logs.configure(settings)
    report_schema(app.extensions["precache"].engine, logging.getLogger("web"))
    _track_request_ids(app)

    from web import ask, errors, health, jobs, limits, metrics, stream

    errors.register(app)
    limits.install(app, settings)
    app.register_blueprint(ask.bp)
    app.register_blueprint(jobs.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(metrics.bp)
    app.register_blueprint(stream.bp)
    from web import feedback; app.register_blueprint(feedback.bp)  # noqa: E702 (POST /v1/feedback, answers)
    from web import stats; app.register_blueprint(stats.bp)  # noqa: E702 (GET /v1/stats, /dashboard)
    from web import openapi; app.register_blueprint(openapi.bp)  # noqa: E702 (GET /openapi.json)
    from web import admin; app.register_blueprint(admin.bp)  # noqa: E702 (/v1/admin, X-API-Key)
    from web import chat; app.register_blueprint(chat.bp)  # noqa: E702 (OpenAI wire format: /v1/chat/completions)
    from web.fast import ExactHits
    app.wsgi_app = ExactHits(app)  # exact hits of plain asks answered before Flask (web/fast.py)
    return app


def _track_request_ids(app: Flask) -> None:
    """Give each request an id (the client's X-Request-ID when safe), logged and echoed back."""

    @app.before_request
    def _start():
        logs.request_id.set(logs.new_request_id(request.headers.get("X-Request-ID")))

    @app.after_request
    def _echo(response):
        response.headers["X-Request-ID"] = logs.request_id.get()
        return response
