"""POST /v1/feedback and GET /v1/answers/<id>: askers pick, confirm or reject the answers they were shown."""

import logging

from flask import Blueprint, current_app, jsonify, request
from sqlalchemy.exc import SQLAlchemyError

from precache import feedback
from precache.context import AppContext
from web import identity
from web.errors import ApiError
from web.schemas import FeedbackRequest, check_question, check_tenant, validated

log = logging.getLogger(__name__)
bp = Blueprint("feedback", __name__)
MAX_ID = 2**31 - 1


def _authorize(settings) -> None:
    key = settings.feedback_key
    if key is None or not key.get_secret_value():
        return
    if not identity.vouched(request, settings):
        raise ApiError(401, "unauthorized", "send the feedback key in the X-Feedback-Key header")


def _servable(ctx: AppContext, answer_id: int) -> dict:
    in_range = 1 <= answer_id <= MAX_ID  # beyond what an id column holds: no such answer
    answer = ctx.store.answer_by_id(answer_id) if in_range and ctx.store.servable_answer(answer_id) else None
    if answer is None:
        raise ApiError(404, "answer_not_found", f"no servable answer {answer_id} in this namespace; use an answer_id "
                       "from an ask's answer or suggestions")
    return answer


@bp.post("/v1/feedback")
def give_feedback():
    ladder = current_app.extensions["precache_ladder"]
    _authorize(ladder.settings)
    req = validated(FeedbackRequest, request)
    check_question(req.question, ladder.settings.max_question_chars)
    ask = ladder.ask(req.question, tenant=check_tenant(req.tenant), asker=identity.asker(request, ladder.settings))
    if req.answer_id is None and req.helpful:
        raise ApiError(400, "invalid_field", "helpful: with answer_id null (none of the answers fits) it must be false")
    ctx = ladder.for_tenant(ask.tenant)
    try:
        answer = _servable(ctx, req.answer_id) if req.answer_id is not None else None
        offered = ladder.offered(ask)
        if answer is not None and answer["answer_id"] not in offered:
            raise ApiError(422, "not_offered", f"answer {answer['answer_id']} is not one the cache offers for this "
                           "question (its instant answer or a suggestion); feedback links only those")
        return jsonify(feedback.record(ctx, ask, ask.vector, answer, req.helpful, offered, ask.asker))
    except SQLAlchemyError as exc:  # the asker's word is not lost unsaid: the app is told to send it again
        log.warning("feedback not recorded, database unavailable: %s", exc)
        raise ApiError(503, "database_unavailable", "feedback cannot be recorded now; send it again later") from None


@bp.get("/v1/answers/<int:answer_id>")
def show_answer(answer_id: int):
    ctx = current_app.extensions["precache"].for_tenant(check_tenant(request.args.get("tenant")))
    answer = _servable(ctx, answer_id)
    return jsonify({"answer_id": answer["answer_id"], "answer": answer["answer"],
                    "question": answer["matched_question"], "quality": answer["quality"], "level": answer["level"]})
