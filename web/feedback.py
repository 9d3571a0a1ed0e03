"""POST /v1/feedback and GET /v1/answers/<id>: askers pick, confirm or reject the answers they were shown."""

import hmac
import logging

from flask import Blueprint, current_app, jsonify, request
from sqlalchemy.exc import SQLAlchemyError

from precache import feedback
from web.ask import make_ask
from web.errors import ApiError
from web.schemas import FeedbackRequest, check_question, check_tenant, validated

log = logging.getLogger(__name__)
bp = Blueprint("feedback", __name__)
MAX_ID = 2**31 - 1


def _asker() -> str:
    """Who gave the feedback: the calling app's X-Asker-Id for its user when sent, else the client address."""
    given = request.headers.get("X-Asker-Id", "").strip()
    if given and len(given) <= 128 and given.isprintable():
        return "asker:" + given
    return "address:" + (request.remote_addr or "unknown")


def _authorize(settings) -> None:
    key = settings.feedback_key
    if key is None or not key.get_secret_value():
        return
    given = request.headers.get("X-Feedback-Key", "")
    if not hmac.compare_digest(given.encode("utf-8", "surrogatepass"), key.get_secret_value().encode()):
        raise ApiError(401, "unauthorized", "send the feedback key in the X-Feedback-Key header")


def _servable(ctx, answer_id: int) -> dict:
    in_range = 1 <= answer_id <= MAX_ID  # beyond what an id column holds: no such answer
    answer = ctx.store.answer_by_id(answer_id) if in_range and ctx.store.servable_answer(answer_id) else None
    if answer is None:
        raise ApiError(404, "answer_not_found", f"no servable answer {answer_id} in this namespace; use an answer_id "
                       "from an ask's answer or suggestions")
    return answer


@bp.post("/v1/feedback")
def give_feedback():
    ctx, req, ask = _read_request(current_app.extensions["precache"])
    tier = current_app.extensions["precache_semantic"]
    vector = tier.vector(ask.question)
    tier.refreshed(ctx)
    try:
        answer = _servable(ctx, req.answer_id) if req.answer_id is not None else None
        offered = _offered(ctx, tier, ask, vector)
        if answer is not None and answer["answer_id"] not in offered:
            raise ApiError(422, "not_offered", f"answer {answer['answer_id']} is not one the cache offers for this "
                           "question (its instant answer or a suggestion); feedback links only those")
        return jsonify(feedback.record(ctx, ask, vector, answer, req.helpful, offered, _asker()))
    except SQLAlchemyError as exc:  # the asker's word is not lost unsaid: the app is told to send it again
        log.warning("feedback not recorded, database unavailable: %s", exc)
        raise ApiError(503, "database_unavailable", "feedback cannot be recorded now; send it again later") from None


def _read_request(ctx):
    """Check the feedback key and the body; return the tenant's context, the request and its question."""
    _authorize(ctx.settings)
    req = validated(FeedbackRequest, request)
    check_question(req.question, ctx.settings.max_question_chars)
    ctx = ctx.for_tenant(check_tenant(req.tenant))
    ask = make_ask(req.question, 0)
    if req.answer_id is None and req.helpful:
        raise ApiError(400, "invalid_field", "helpful: with answer_id null (none of the answers fits) it must be false")
    return ctx, req, ask


def _offered(ctx, tier, ask, vector) -> dict[int, float]:
    """Return the answers the ladder offers for a question now (instant answer and suggestions) with their confidence."""
    offered = {payload["answer_id"]: near.confidence for payload, near in tier.offers(ctx, vector)}
    hit = ctx.store.lookup(ask.qhash)
    if hit is not None:  # an exact hit (a cached question, or a phrasing learned before)
        offered.setdefault(hit[0]["answer_id"], 1.0)
    return offered


@bp.get("/v1/answers/<int:answer_id>")
def show_answer(answer_id: int):
    ctx = current_app.extensions["precache"].for_tenant(check_tenant(request.args.get("tenant")))
    answer = _servable(ctx, answer_id)
    return jsonify({"answer_id": answer["answer_id"], "answer": answer["answer"],
                    "question": answer["matched_question"], "quality": answer["quality"], "level": answer["level"]})
