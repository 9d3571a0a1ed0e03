"""GET /openapi.json: the HTTP API as OpenAPI 3.1, generated from the pydantic models that validate it.

The only hand-kept part is the operations below (which routes exist, what each takes and answers), one
table per area; web/openapi_spec.py renders them, and every body schema comes from
`Model.model_json_schema()`, so a change to a model changes the spec.
tests/web/test_openapi.py fails when a route of the app is missing here.
"""

from flask import Blueprint, current_app, jsonify

from web import stats
from web.chat_schemas import ChatCompletion, ChatRequest, ModelList
from web.openapi_spec import Operation, Query, build_spec
from web.responses import (
    AnswerView,
    AskPending,
    AskReady,
    ErrorBody,
    FeedbackDone,
    Health,
    JobStatus,
    Ready,
    StatsResponse,
)
from web.schemas import (
    TENANT_PATTERN,
    AskRequest,
    DocumentsImportRequest,
    FaqImportRequest,
    FeedbackRequest,
    PinRequest,
    ReplaceRequest,
    TenantRequest,
)

bp = Blueprint("openapi", __name__)

# What each error status means in this API; every one is answered with ErrorBody.
ERRORS = {
    400: "Invalid request: a bad or unknown field (chat completions ignore unknown fields and name the field at "
         "fault in `param`, also for what the cache cannot serve: tools, n > 1, JSON output, image or audio), an empty, over-long or control-character question, "
         "invalid JSON or UTF-8, or a bad query value.",
    401: "Admin route (or every tenant's stats) without the right X-API-Key header, or feedback without the right "
         "X-Feedback-Key when PRECACHE_FEEDBACK_KEY is set.",
    404: "Unknown route, unknown, expired or another tenant's job, unknown answer, or the admin API disabled (no "
         "PRECACHE_API_KEY).",
    405: "Method not allowed on this path.",
    413: "Body over PRECACHE_MAX_BODY_BYTES (refused before it is read whole).",
    415: "Body is not JSON (send Content-Type: application/json).",
    422: "Feedback on an answer the cache does not offer for that question (neither its instant answer nor a "
         "suggestion).",
    429: "Over PRECACHE_RATE_LIMIT for this client address (rate_limited), over PRECACHE_STREAMS_PER_CLIENT open "
         "streams (too_many_streams) or PRECACHE_NEW_QUESTIONS_PER_MINUTE new questions (too_many_new_questions) "
         "for this client; retry after the Retry-After header's seconds.",
    503: "Neither Redis nor the database can record the question now (the body also carries the fallback "
         "answer), or the database cannot record feedback now.",
}
RATE_LIMITED = {429: ErrorBody}  # every route but /healthz, /readyz and /metrics (rate limit, per-client caps)


# OpenAI's stream (POST /v1/chat/completions with stream true): `data: {chat.completion.chunk}` lines, then
# `data: [DONE]`.
CHAT_STREAM = {"schema": {"type": "string", "description": "data: lines of chat.completion.chunk JSON, then "
                                                            "data: [DONE]"}}


TENANT = {"type": "string", "pattern": f"^{TENANT_PATTERN.pattern}$"}
STATS_WINDOW = Query(  # the limits the view enforces, not a copy of them
    "window_s",
    {"type": "integer", "minimum": stats.MIN_WINDOW_S, "maximum": stats.MAX_WINDOW_S, "default": stats.DEFAULT_WINDOW_S},
    "the window the stats cover, in whole seconds",
)

ASK_OPERATIONS = (
    Operation(
        "post", "/v1/ask", "ask", "Answer a question at once: a stored answer, or the fallback and a job",
        request=AskRequest,
        responses={200: AskReady, 202: AskPending, 400: ErrorBody, 413: ErrorBody, 415: ErrorBody,
                   503: ErrorBody, **RATE_LIMITED},
    ),
    Operation(
        "get", "/v1/ask/stream", "askStream",
        "Server-Sent Events: `answer` (instant) or `pending`, then `token` (the quick answer's text as it is "
        "generated), then `quick`, then `detailed`, then `done`",
        query=(Query("question", AskRequest.model_json_schema()["properties"]["question"],
                     "the question, as in POST /v1/ask", required=True),
               Query("tenant", TENANT, "the tenant, as in POST /v1/ask")),
        responses={200: "text/event-stream", 400: ErrorBody, **RATE_LIMITED},
    ),
    Operation(
        "post", "/v1/feedback", "feedback",
        "Say whether an answer fits a question: a picked suggestion or a confirmed answer (helpful), a wrong "
        "answer or a rejected suggestion (not helpful), or none fits (answer_id null)",
        request=FeedbackRequest,
        responses={200: FeedbackDone, 400: ErrorBody, 401: ErrorBody, 404: ErrorBody, 413: ErrorBody,
                   415: ErrorBody, 422: ErrorBody, 503: ErrorBody, **RATE_LIMITED},
    ),
    Operation(
        "get", "/v1/answers/{answer_id}", "getAnswer", "A servable answer (one an ask returned or suggested)",
        query=(Query("tenant", TENANT, "the tenant"),),
        path_params={"answer_id": "an answer_id from an ask or its suggestions"},
        responses={200: AnswerView, 400: ErrorBody, 404: ErrorBody, **RATE_LIMITED},
    ),
)

CHAT_OPERATIONS = (
    Operation(
        "post", "/v1/chat/completions", "chatCompletions",
        "OpenAI's chat completion over the ladder: the last user message (made standalone when it needs the "
        "conversation); with stream true, Server-Sent Events of chat.completion.chunk, then [DONE]. Headers: "
        "Cache-Control (no-cache: a new answer replaces the cached one; no-store: nothing is kept), "
        "x-precache-tenant",
        request=ChatRequest,
        responses={200: (ChatCompletion, CHAT_STREAM), 400: ErrorBody, 413: ErrorBody, 415: ErrorBody, 503: ErrorBody,
                   **RATE_LIMITED},
    ),
    Operation("get", "/v1/models", "listModels", "The model chat clients name (OpenAI's model list)",
              responses={200: ModelList, **RATE_LIMITED}),
)

STATUS_OPERATIONS = (
    Operation(
        "get", "/v1/jobs/{job_id}", "getJob", "The state of a generation job, with the answer when ready",
        query=(Query("tenant", TENANT, "the tenant the question was asked in: another tenant's job is not found"),),
        path_params={"job_id": "the job_id from a 202 of POST /v1/ask"},
        responses={200: JobStatus, 400: ErrorBody, 404: ErrorBody, **RATE_LIMITED},
    ),
    Operation(
        "get", "/v1/stats", "getStats",
        "What an operator needs at a glance, over a time window, for one tenant (every tenant with all=true and "
        "the admin key in X-API-Key)",
        query=(STATS_WINDOW, Query("tenant", TENANT, "the tenant (none when absent)"),
               Query("all", {"type": "boolean", "default": False},
                     "every tenant's stats at once; needs the admin key, and no tenant")),
        responses={200: StatsResponse, 400: ErrorBody, 401: ErrorBody, 404: ErrorBody, **RATE_LIMITED},
    ),
    Operation("get", "/dashboard", "dashboard", "The stats, plotted (an HTML page)",
              responses={200: "text/html", **RATE_LIMITED}),
    Operation("get", "/metrics", "metrics", "Prometheus metrics (text exposition format)",
              responses={200: "text/plain"}),
    Operation("get", "/healthz", "healthz", "Liveness", responses={200: Health}),
    Operation("get", "/readyz", "readyz",
              "Readiness: the state of Redis, the database and the broker (degraded still answers every ask)",
              responses={200: Ready, 503: Ready}),
)

# The admin routes (header X-API-Key).
_ADMIN_ERRORS = {400: ErrorBody, 401: ErrorBody, 404: ErrorBody, **RATE_LIMITED}
_ADMIN_OK = {200: "application/json", **_ADMIN_ERRORS}
_ANSWER = {"answer_id": "the answer's id (from GET /v1/admin/review or an ask's answer_id)"}
_ADMIN_TENANT = Query("tenant", TENANT, "the tenant")
_ANSWER_VERBS = (
    ("approve", "Serve this answer whatever its quality", None),
    ("invalidate", "Never serve this answer again", None),
    ("pin", "Serve this answer first (or stop: {\"pinned\": false})", PinRequest),
    ("replace", "Replace this answer by a curated one", ReplaceRequest),
)
ADMIN_OPERATIONS = (
    Operation("post", "/v1/admin/faq", "adminFaqImport", "Import FAQ entries (all or none)",
              request=FaqImportRequest, responses=_ADMIN_OK),
    Operation("post", "/v1/admin/documents", "adminDocumentsImport",
              "Import documents (each whole or not at all); answers that used a changed one stop being served",
              request=DocumentsImportRequest, responses=_ADMIN_OK),
    Operation("get", "/v1/admin/documents", "adminDocuments", "The tenant's documents", query=(_ADMIN_TENANT,),
              responses=_ADMIN_OK),
    Operation("post", "/v1/admin/precompute", "adminPrecompute", "Queue every FAQ question without an answer",
              request=TenantRequest, responses=_ADMIN_OK),
    Operation("get", "/v1/admin/review", "adminReview", "Answers below the quality threshold, not yet reviewed",
              query=(_ADMIN_TENANT, Query("limit", {"type": "integer", "minimum": 1, "maximum": 1000}, "at most")),
              responses=_ADMIN_OK),
    *[Operation("post", f"/v1/admin/answers/{{answer_id}}/{verb}", f"admin{verb.title()}", summary,
                request=body, query=(_ADMIN_TENANT,), path_params=_ANSWER, responses=_ADMIN_OK)
      for verb, summary, body in _ANSWER_VERBS],
    Operation("get", "/v1/admin/learned", "adminLearned", "Learned phrasings, who taught each and when",
              query=(_ADMIN_TENANT,), responses=_ADMIN_OK),
    Operation("post", "/v1/admin/learned/{link_id}/unlearn", "adminUnlearn", "Retract one learned phrasing",
              path_params={"link_id": "the id from GET /v1/admin/learned"}, responses=_ADMIN_OK),
    Operation("post", "/v1/admin/learned/{link_id}/confirm", "adminConfirmLearned",
              "Confirm a learned phrasing that waits for more askers",
              path_params={"link_id": "the id from GET /v1/admin/learned"}, responses=_ADMIN_OK),
    Operation("get", "/v1/admin/negatives", "adminNegatives", "Negatives askers gave (does not fit, none fits)",
              query=(_ADMIN_TENANT, Query("answer_id", {"type": "integer", "minimum": 0}, "against this answer")),
              responses=_ADMIN_OK),
    Operation("post", "/v1/admin/negatives/{feedback_id}/withdraw", "adminWithdrawNegative",
              "Undo one negative", path_params={"feedback_id": "the id from GET /v1/admin/negatives"},
              responses=_ADMIN_OK),
)

SPEC_OPERATION = Operation("get", "/openapi.json", "openapi", "This description of the API (OpenAPI 3.1)",
                           responses={200: "application/json", **RATE_LIMITED})


def operations() -> list[Operation]:
    """Every route of the app (tests/web/test_openapi.py compares this to app.url_map)."""
    return [*ASK_OPERATIONS, *CHAT_OPERATIONS, *STATUS_OPERATIONS, *ADMIN_OPERATIONS, SPEC_OPERATION]


@bp.get("/openapi.json")
def openapi():
    spec = current_app.extensions.get("precache_openapi")
    if spec is None:
        spec = current_app.extensions["precache_openapi"] = build_spec(operations(), ERRORS)
    return jsonify(spec)
