"""Baseline for bench/hit_path.py: a Flask app whose one view parses JSON and does one Redis GET."""

import os

import redis
from flask import Flask, jsonify, request

KEY = "bench:bare:answer"


def create_app(redis_url: str | None = None) -> Flask:
    """Build the baseline app; Redis comes from the argument or PRECACHE_REDIS_URL."""
    app = Flask(__name__)
    url = redis_url or os.environ.get("PRECACHE_REDIS_URL", "redis://127.0.0.1:6379/13")
    client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=2)

    @app.post("/v1/ask")
    def ask():
        body = request.get_json()
        cached = client.get(KEY)
        return jsonify({"status": "ready", "answer": cached.decode() if cached else None,
                        "source": "exact", "question": body["question"]})

    return app
