"""Request bodies: parsed strictly, every mistake reported with what to fix."""

import json
import unicodedata
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError

from web.errors import ApiError

_ALLOWED_CONTROLS = {"\t", "\n", "\r"}


class AskRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: StrictStr
    wait_ms: StrictInt = Field(0, ge=0)
    detail: Literal["quick", "detailed"] = "quick"


def read_json_object(request) -> dict:
    """Return the request body as a JSON object, or raise ApiError (415 or 400)."""
    if not request.is_json:
        raise ApiError(415, "unsupported_media_type", "send a JSON body with Content-Type: application/json")
    try:
        body = json.loads(request.get_data(cache=False))
    except ValueError as exc:  # also invalid UTF-8
        raise ApiError(400, "invalid_json", f"body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_body", "body must be a JSON object such as {\"question\": \"...\"}")
    return body


def parse_ask(request, settings) -> AskRequest:
    """Validate an ask body against the schema and the configured limits."""
    try:
        ask = AskRequest.model_validate(read_json_object(request))
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "body"
        raise ApiError(400, "invalid_field", f"{field}: {err['msg']}") from None
    _check_question(ask.question, settings.max_question_chars)
    if ask.wait_ms > settings.max_wait_ms:
        raise ApiError(400, "invalid_field", f"wait_ms: must be at most {settings.max_wait_ms}")
    return ask


def _check_question(question: str, limit: int) -> None:
    if not question.strip():
        raise ApiError(400, "invalid_field", "question: must not be empty or only whitespace")
    if len(question) > limit:
        raise ApiError(400, "question_too_long", f"question: is {len(question)} characters; the limit is {limit}")
    if any(unicodedata.category(ch) in ("Cc", "Cs") and ch not in _ALLOWED_CONTROLS for ch in question):
        raise ApiError(400, "invalid_field", "question: contains control characters; send plain text")


class SourceStats(BaseModel):
    """Asks answered by one tier of the ladder, over the stats window."""

    count: int
    share: float  # count / all asks, 0..1
    latency_ms: dict[str, float]  # {"p50", "p90", "p99"}


class TimePoint(BaseModel):
    """Asks per source in one time bucket (bucket start, ISO 8601 UTC)."""

    t: str
    counts: dict[str, int]


class MissedQuestion(BaseModel):
    question: str
    count: int


class StatsResponse(BaseModel):
    """GET /v1/stats: what an operator needs at a glance."""

    window_s: int
    asks: int
    instant_share: float  # share of asks answered from exact, semantic or template
    sources: dict[str, SourceStats]  # keys: exact, semantic, template, generated, fallback
    timeline: list[TimePoint]
    quality: dict[str, int]  # stored answers by quality bucket: "0.0-0.2" ... "0.8-1.0", "unscored"
    queues: dict[str, int | None]  # depth per Celery queue; None when the broker is unreachable
    top_missed: list[MissedQuestion]
