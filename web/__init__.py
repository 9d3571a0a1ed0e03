"""The web process: a thin Flask app that answers every question at once."""

import logging

from flask import Flask, request

from precache import logs
from precache.config import load_settings
from precache.db import report_schema
from web.fast import ExactHits
from web.ladder import Ladder


def create_app(test_config: dict | None = None) -> Flask:
    """Build the app; `test_config` overrides settings fields (tests pass their own)."""
    app = Flask(__name__)
    settings = load_settings(**(test_config or {}))
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json.sort_keys = False
    ladder = Ladder.from_settings(settings)
    app.extensions["precache_ladder"] = ladder  # the ask path: ask, stream, chat and feedback answer through it
    app.extensions["precache"] = ladder.context  # the connections, for the other views
    logs.configure(settings)
    report_schema(ladder.context.engine, logging.getLogger("web"))
    _track_request_ids(app)
    _register_views(app, settings)
    app.wsgi_app = ExactHits(app, ladder)  # exact hits of plain asks answered before Flask (web/fast.py)
    return app


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
