"""POST /v1/ask: validate, then answer through the ladder (web/ladder.py) within the deadline."""

import time

from flask import Blueprint, current_app, jsonify, request

from web import identity
from web.fast import HOT_MISSED
from web.schemas import parse_ask

bp = Blueprint("ask", __name__)


@bp.post("/v1/ask")
def ask():
    started = time.perf_counter()
    ladder = current_app.extensions["precache_ladder"]
    req = parse_ask(request, ladder.settings)
    item = ladder.ask(req.question, req.wait_ms, req.detail, req.tenant, started,
                      identity.asker(request, ladder.settings))
    item.hot_missed = bool(request.environ.get(HOT_MISSED))  # web/fast.py read the hot cache already
    outcome = ladder.answer(item)
    return jsonify(outcome.body), outcome.status
