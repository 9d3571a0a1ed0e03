"""The admin API under /v1/admin (header X-API-Key): import FAQ entries and documents, trigger precompute,
review, approve, reject (invalidate), pin and replace answers. Without PRECACHE_API_KEY it is disabled."""

import hmac

from flask import Blueprint, current_app, jsonify, request

from precache import admin
from precache.faq import import_faq
from web.errors import ApiError
from web.schemas import check_tenant, read_json_object

bp = Blueprint("admin", __name__, url_prefix="/v1/admin")


@bp.before_request
def authenticate():
    key = current_app.extensions["precache"].settings.api_key
    if key is None or not key.get_secret_value():
        raise ApiError(404, "admin_disabled", "the admin API is disabled; set PRECACHE_API_KEY to enable it")
    given = request.headers.get("X-API-Key", "")
    # Constant time: the comparison takes as long whatever prefix of the key is right.
    if not hmac.compare_digest(given.encode("utf-8", "surrogatepass"), key.get_secret_value().encode()):
        raise ApiError(401, "unauthorized", "send the admin key in the X-API-Key header")


def _ctx(tenant: str | None = None):
    ctx = current_app.extensions["precache"]
    return ctx.for_tenant(check_tenant(tenant if tenant is not None else request.args.get("tenant")))


def _body() -> dict:
    return read_json_object(request) if request.content_length else {}


@bp.post("/faq")
def faq_import():
    """Body {"entries": [{"question", "answer"?, "reference"?}], "tenant"?}: import them all, or none."""
    from precache.faq import parse_entry

    body = read_json_object(request)
    entries = body.get("entries")
    if not isinstance(entries, list) or not entries:
        raise ApiError(400, "invalid_field", "entries: send a non-empty list of {\"question\", \"answer\"?} objects")
    parsed = [parse_entry(number, record) for number, record in enumerate(entries)]
    problems = [f"entries[{n}]: {p}" for n, p in enumerate(parsed) if isinstance(p, str)]
    if problems:
        raise ApiError(400, "invalid_entries", "; ".join(problems[:20]) + "; nothing imported")
    return jsonify(import_faq(_ctx(body.get("tenant")), parsed))


@bp.post("/documents")
def documents_import():
    """Body {"documents": [{"name", "text"}], "prune"?: bool, "tenant"?}: import them (Markdown or plain text),
    as `precache docs import` does; each one is stored whole or not at all."""
    from precache.documents.importing import import_documents
    from precache.documents.reading import Document
    from precache.semantic.embedders import embedder_for

    body = read_json_object(request)
    entries, prune = body.get("documents"), body.get("prune", False)
    if not isinstance(entries, list) or not entries:
        raise ApiError(400, "invalid_field", "documents: send a non-empty list of {\"name\", \"text\"} objects")
    if not isinstance(prune, bool):
        raise ApiError(400, "invalid_field", "prune: true or false")
    problems = [f"documents[{n}]: send {{\"name\": a non-empty text, \"text\": a text with words}}"
                for n, entry in enumerate(entries)
                if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or not entry["name"].strip()
                or len(entry["name"]) > 1000 or not isinstance(entry.get("text"), str) or not entry["text"].strip()]
    names = [entry["name"].strip() for entry in entries if isinstance(entry, dict) and not problems]
    if not problems and len(set(names)) < len(names):
        problems.append("documents: each name once")
    if problems:
        raise ApiError(400, "invalid_documents", "; ".join(problems[:20]) + "; nothing imported")
    ctx = _ctx(body.get("tenant"))
    documents = [Document(name, entry["text"]) for name, entry in zip(names, entries)]
    report = import_documents(ctx, embedder_for(ctx.settings), documents, prune=prune)
    return jsonify(report.view())


@bp.get("/documents")
def documents_list():
    """The tenant's documents (?tenant=): name, passages, characters, content hash, when imported."""
    from precache.documents.importing import listed

    return jsonify({"documents": listed(_ctx())})


@bp.post("/precompute")
def precompute():
    """Queue generation for every FAQ question without a servable answer (body {"tenant"?})."""
    from precache.precompute import queue_unanswered

    job_ids = queue_unanswered(_ctx(_body().get("tenant")))
    return jsonify({"queued": len(job_ids), "job_ids": job_ids})


@bp.get("/review")
def review():
    """Answers below the quality threshold that nobody has approved or rejected (?tenant=&limit=)."""
    limit = request.args.get("limit", "100")
    if not limit.isdigit() or not 1 <= int(limit) <= 1000:
        raise ApiError(400, "invalid_field", "limit: a whole number from 1 to 1000")
    return jsonify({"answers": admin.awaiting_review(_ctx(), int(limit))})


def _act(action, answer_id: int, *args):
    try:
        return jsonify(action(_ctx(), answer_id, *args))
    except admin.NotFound as exc:
        raise ApiError(404, "answer_not_found", f"{exc}; list answers with GET /v1/admin/review") from None


@bp.post("/answers/<int:answer_id>/approve")
def approve(answer_id: int):
    return _act(admin.approve, answer_id)


@bp.post("/answers/<int:answer_id>/invalidate")
def invalidate(answer_id: int):
    return _act(admin.reject, answer_id)


@bp.post("/answers/<int:answer_id>/pin")
def pin(answer_id: int):
    pinned = _body().get("pinned", True)
    if not isinstance(pinned, bool):
        raise ApiError(400, "invalid_field", "pinned: true or false")
    return _act(admin.pin, answer_id, pinned)


@bp.post("/answers/<int:answer_id>/replace")
def replace(answer_id: int):
    text = read_json_object(request).get("answer")
    if not isinstance(text, str) or not text.strip():
        raise ApiError(400, "invalid_field", "answer: send the new answer text")
    return _act(admin.replace, answer_id, text.strip())


@bp.get("/learned")
def learned():
    """Learned phrasings, newest first, retracted ones included (?tenant= for one tenant's)."""
    from precache.feedback import learned as listed

    tenant = request.args.get("tenant")
    return jsonify({"learned": listed(current_app.extensions["precache"],
                                      check_tenant(tenant) if tenant is not None else None)})


@bp.post("/learned/<int:link_id>/unlearn")
def unlearn(link_id: int):
    """Retract one learned phrasing: its phrasing is served that answer no more, at once."""
    from precache.feedback import unlearn as retract

    return _link_action(lambda ctx: retract(ctx, link_id, by="admin"), link_id)


@bp.post("/learned/<int:link_id>/confirm")
def confirm(link_id: int):
    """Confirm a learned phrasing that waits for more askers: it serves others at once."""
    from precache.feedback import confirm as confirmed

    return _link_action(lambda ctx: confirmed(ctx, link_id), link_id)


def _link_action(action, link_id: int):
    view = action(current_app.extensions["precache"])
    if view is None:
        raise ApiError(404, "learned_not_found", f"no learned phrasing {link_id}; list them with GET /v1/admin/learned")
    return jsonify(view)


@bp.get("/negatives")
def negatives():
    """Negatives askers gave, newest first (?tenant= for one tenant's, ?answer_id= against one answer)."""
    from precache.feedback import negatives as listed

    tenant, answer_id = request.args.get("tenant"), request.args.get("answer_id")
    if answer_id is not None and not answer_id.isdigit():
        raise ApiError(400, "invalid_field", "answer_id: a whole number")
    return jsonify({"negatives": listed(current_app.extensions["precache"],
                                        check_tenant(tenant) if tenant is not None else None,
                                        int(answer_id) if answer_id is not None else None)})


@bp.post("/negatives/<int:feedback_id>/withdraw")
def withdraw(feedback_id: int):
    """Undo one negative: every web process forgets it at its next ask."""
    from precache.feedback import withdraw as undo

    view = undo(current_app.extensions["precache"], feedback_id)
    if view is None:
        raise ApiError(404, "negative_not_found", f"no negative {feedback_id}; list them with GET /v1/admin/negatives")
    return jsonify(view)
