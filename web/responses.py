"""Response bodies: what the views return, as pydantic models.

They document web/ask.py, web/jobs.py, web/health.py, web/stats.py and web/errors.py; web/openapi.py
publishes them and tests/web/test_openapi.py checks real responses against them. `extra="forbid"` makes
an undocumented field a test failure, not silent drift.
"""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema

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
    sources: dict[str, SourceStats]  # keys: exact, semantic, template, generated, fallback, renew
    timeline: list[TimePoint]
    quality: dict[str, int]  # stored answers by quality bucket: "0.0-0.2" ... "0.8-1.0", "unscored"
    queues: dict[str, int | None]  # depth per Celery queue; None when the broker is unreachable
    top_missed: list[MissedQuestion]


_RESPONSE = ConfigDict(extra="forbid")


def _drop_default(schema: dict) -> None:
    schema.pop("default", None)


def _sometimes(description: str):
    """A field that is either present with a value or left out (never sent as null)."""
    return Field(None, description=description, json_schema_extra=_drop_default)


class SourceView(BaseModel):
    """A passage of the team's documents that an answer was written from."""

    model_config = _RESPONSE

    document: str = Field(description="the document's name, as imported")
    excerpt: str = Field(description="the passage's text (at most ~1,000 characters)")
    score: float = Field(description="cosine similarity of the question and the passage")


GROUNDED = "true when the answer was written from passages of the team's documents (`sources`)"
SOURCES = "the passages the answer used, best first; empty when no document took part"


class AskReady(BaseModel):
    """200 from POST /v1/ask (and GET /v1/jobs/{job_id} once generated): an answer to show now."""

    model_config = _RESPONSE

    status: Literal["ready"]
    answer: str
    source: Literal["exact", "semantic", "template", "generated"]
    quality: float | None = Field(description="0..1; null for template answers")
    answer_id: int | None = Field(description="stored answer id; null for template answers")
    matched_question: str | None = Field(description="the stored question that matched; null for templates")
    grounded: bool = Field(description=GROUNDED)
    sources: list[SourceView] = Field(description=SOURCES)
    job_id: str | SkipJsonSchema[None] = _sometimes(
        "the generation job (source generated), or the detailed answer's job while it is pending")
    intent: str | SkipJsonSchema[None] = _sometimes("the template intent that matched (source template only)")
    level: Literal["quick", "detailed"] | SkipJsonSchema[None] = _sometimes("the stored answer's level")
    stale: bool | SkipJsonSchema[None] = _sometimes("true when the answer is past its TTL; a refresh is queued")
    similarity: float | SkipJsonSchema[None] = _sometimes("cosine similarity of the match (source semantic)")


class Suggestion(BaseModel):
    """An answer near the question that the asker may pick ("did you mean ...?")."""

    model_config = _RESPONSE

    question: str = Field(description="the cached question the answer belongs to")
    answer_id: int = Field(description="GET /v1/answers/{answer_id} shows it; POST /v1/feedback picks it")
    similarity: float = Field(description="cosine similarity of the question to the cached one")


class AnswerView(BaseModel):
    """GET /v1/answers/{answer_id}: a servable answer."""

    model_config = _RESPONSE

    answer_id: int
    answer: str
    question: str = Field(description="the question it answers")
    quality: float | None
    level: str


class FeedbackDone(BaseModel):
    """POST /v1/feedback: what the cache did with it."""

    model_config = _RESPONSE

    recorded: bool
    learned: bool = Field(description="the phrasing now gets this answer at once, for every asker (a learned "
                          "phrasing: enough distinct askers, PRECACHE_LEARN_CONFIRMATIONS, taught it)")
    proposed: bool = Field(description="this asker's link of the phrasing to the answer is kept, and serves others "
                           "once more askers confirm it (or an admin does)")
    retracted: int = Field(description="learned links of this phrasing to this answer taken back")


class AskPending(BaseModel):
    """202 from POST /v1/ask: the fallback answer now, the real one later at `poll`."""

    model_config = _RESPONSE

    status: Literal["pending"]
    job_id: str | SkipJsonSchema[None] = _sometimes("the generation job (left out when queued is false)")
    answer: str = Field(description="the configured fallback answer")
    source: Literal["fallback"]
    poll: str | SkipJsonSchema[None] = _sometimes("GET this path for the job's state: /v1/jobs/{job_id}")
    queued: Literal[False] | SkipJsonSchema[None] = _sometimes(
        "false when the queue is unreachable: the question is kept and queued once it is back (no job yet); "
        "or, with reason language, when nothing is generated for it")
    reason: Literal["language"] | SkipJsonSchema[None] = _sometimes(
        "language: the model does not answer in the question's language (PRECACHE_LLM_LANGUAGES), so nothing "
        "is generated; the answer says so in the asker's language, and the question is kept for an admin to answer")
    suggestions: list[Suggestion] | SkipJsonSchema[None] = _sometimes(
        "up to three answers near the question, nearest first, one per answer: pick one with POST /v1/feedback")


class JobStatus(BaseModel):
    """GET /v1/jobs/{job_id}: the ask fields once ready, else the fallback answer and the state."""

    model_config = _RESPONSE

    status: Literal["pending", "ready", "failed"]
    job_id: str
    answer: str
    source: Literal["generated", "fallback"]
    quality: float | None | SkipJsonSchema[None] = _sometimes("when ready")
    answer_id: int | None | SkipJsonSchema[None] = _sometimes("when ready")
    matched_question: str | None | SkipJsonSchema[None] = _sometimes("when ready")
    grounded: bool | SkipJsonSchema[None] = _sometimes(f"when ready: {GROUNDED}")
    sources: list[SourceView] | SkipJsonSchema[None] = _sometimes(f"when ready: {SOURCES}")
    error: str | SkipJsonSchema[None] = _sometimes("why generation failed (status failed only)")


class ErrorDetail(BaseModel):
    model_config = _RESPONSE

    code: str = Field(description="machine-readable, e.g. invalid_field, job_not_found, body_too_large")
    message: str = Field(description="what went wrong and what to send instead")
    type: str = Field(description="OpenAI's class of error: invalid_request_error, authentication_error, "
                      "not_found_error, rate_limit_error, server_error")
    param: str | SkipJsonSchema[None] = _sometimes("the request field at fault (POST /v1/chat/completions)")


class ErrorBody(BaseModel):
    """Every error: {"error": {"code", "message", "type"}}; a 503 from POST /v1/ask also carries the fallback."""

    model_config = _RESPONSE

    error: ErrorDetail
    answer: str | SkipJsonSchema[None] = _sometimes("the fallback answer (503 queue_unavailable only)")
    source: Literal["fallback"] | SkipJsonSchema[None] = _sometimes("fallback (503 queue_unavailable only)")


class Health(BaseModel):
    """GET /healthz: the process is up."""

    model_config = _RESPONSE

    status: Literal["ok"]


class Check(BaseModel):
    model_config = _RESPONSE

    ok: bool
    error: str | SkipJsonSchema[None] = _sometimes("the exception, when not ok (at most 300 characters)")


class Ready(BaseModel):
    """GET /readyz: each dependency's state. 200 ready (all ok) or degraded (Redis or the database down: asks
    are still answered and nothing is lost); 503 unavailable when neither answers."""

    model_config = _RESPONSE

    status: Literal["ready", "degraded", "unavailable"]
    checks: dict[str, Check] = Field(description="keys: redis, database, broker")
