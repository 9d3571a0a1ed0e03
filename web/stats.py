"""GET /v1/stats (what the operator needs at a glance, as JSON) and GET /dashboard (the same, plotted).

The stats are one tenant's (`?tenant=`, no tenant when absent): its asks and top missed questions are its
own. Every tenant's at once (`?all=true`) is the admin's view: it takes the admin key, as /v1/admin does.
"""

import re

from flask import Blueprint, current_app, jsonify, render_template, request

from precache.stats import snapshot
from web.admin import authenticate as require_admin_key
from web.errors import ApiError
from web.responses import StatsResponse
from web.schemas import check_tenant

bp = Blueprint("stats", __name__)

DEFAULT_WINDOW_S = 3600
MIN_WINDOW_S, MAX_WINDOW_S = 60, 7 * 24 * 3600


def parse_window(raw: str | None) -> int:
    """Return the `window_s` query value in seconds, or raise ApiError(400) saying what is allowed."""
    if raw is None:
        return DEFAULT_WINDOW_S
    allowed = f"must be a whole number of seconds from {MIN_WINDOW_S} to {MAX_WINDOW_S}"
    if not re.fullmatch(r"[0-9]{1,7}", raw):
        raise ApiError(400, "invalid_field", f"window_s: {allowed}, not {raw[:40]!r}")
    window_s = int(raw)
    if not MIN_WINDOW_S <= window_s <= MAX_WINDOW_S:
        raise ApiError(400, "invalid_field", f"window_s: {allowed}, not {window_s}")
    return window_s


@bp.get("/v1/stats")
def stats():
    window_s = parse_window(request.args.get("window_s"))
    body = StatsResponse.model_validate(snapshot(current_app.extensions["precache"], window_s, tenant=_scope()))
    return jsonify(body.model_dump())


def _scope() -> str | None:
    """Return the tenant whose stats are asked for, or None for every tenant's (admin key checked)."""
    everyone = request.args.get("all", "false")
    if everyone not in ("true", "false"):
        raise ApiError(400, "invalid_field", f"all: must be true or false, not {everyone[:40]!r}")
    if everyone == "false":
        return check_tenant(request.args.get("tenant"))
    if "tenant" in request.args:
        raise ApiError(400, "invalid_field", "all: true covers every tenant; leave out tenant")
    require_admin_key()
    return None


@bp.get("/dashboard")
def dashboard():
    return render_template("dashboard.html")
