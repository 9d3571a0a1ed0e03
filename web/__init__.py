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
    _attach_state(app, settings)
    logs.configure(settings)
    report_schema(app.extensions["precache"].engine, logging.getLogger("web"))
    _track_request_ids(app)
    _register_views(app, settings)
    from web.fast import ExactHits
    app.wsgi_app = ExactHits(app)  # exact hits of plain asks answered before Flask (web/fast.py)
    return app


def _attach_state(app: Flask, settings) -> None:
    """Give the app its context (connections), the template intents and the warmed semantic tier."""
    app.extensions["precache"] = Context(settings)
    app.extensions["precache_intents"] = load_intents(settings.templates_file)
    app.extensions["precache_semantic"] = SemanticTier(settings)
    app.extensions["precache_semantic"].warm()


def _register_views(app: Flask, settings) -> None:
    from web import admin, ask, chat, errors, feedback, health, jobs, limits, metrics, openapi, stats, stream

    errors.register(app)
    limits.install(app, settings)
    for view in (ask, jobs, health, metrics, stream, feedback, stats, openapi, admin, chat):
        app.register_blueprint(view.bp)


def _track_request_ids(app: Flask) -> None:
    """Give each request an id (the client's X-Request-ID when safe), logged and echoed back."""

    @app.before_request
    def _start():
        logs.request_id.set(logs.new_request_id(request.headers.get("X-Request-ID")))

    @app.after_request
    def _echo(response):
        response.headers["X-Request-ID"] = logs.request_id.get()
        return response
