"""The web process: a thin Flask app that answers every question at once."""

from flask import Flask

from precache.config import load_settings
from precache.context import Context
from precache.templates import load_intents


def create_app(test_config: dict | None = None) -> Flask:
    """Build the app; `test_config` overrides settings fields (tests pass their own)."""
    app = Flask(__name__)
    settings = load_settings(**(test_config or {}))
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json.sort_keys = False
    app.extensions["precache"] = Context(settings)
    app.extensions["precache_intents"] = load_intents(settings.templates_file)

    from web import ask, errors, health, jobs

    errors.register(app)
    app.register_blueprint(ask.bp)
    app.register_blueprint(jobs.bp)
    app.register_blueprint(health.bp)
    return app
