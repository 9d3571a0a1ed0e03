"""GET /openapi.json: the HTTP API as OpenAPI 3.1, generated from the pydantic models that validate it.

The only hand-kept part is OPERATIONS below (which routes exist, what each takes and answers);
every body schema comes from `Model.model_json_schema()`, so a change to a model changes the spec.
tests/web/test_openapi.py fails when a route of the app is missing here.
"""

import re
from dataclasses import dataclass, field
from http import HTTPStatus
from importlib.metadata import PackageNotFoundError, version

from flask import Blueprint, current_app, jsonify
from pydantic import BaseModel

from web.schemas import (
    AnswerView,
    FeedbackDone,
    FeedbackRequest,
    AskPending,
    AskReady,
    TENANT_PATTERN,
    AskRequest,
    FaqImportRequest,
    PinRequest,
    ReplaceRequest,
    TenantRequest,
    ErrorBody,
    Health,
    JobStatus,
    Ready,
    StatsResponse,
)

from web.chat_schemas import ChatCompletion, ChatRequest, ModelList

bp = Blueprint("openapi", __name__)

OPENAPI_VERSION = "3.1.0"
REF = "#/components/schemas/{model}"

# What each error status means in this API; every one is answered with ErrorBody.
ERRORS = {
    400: "Invalid request: a bad or unknown field (chat completions ignore unknown fields and name the field at "
         "fault in `param`, also for what the cache cannot serve: tools, n > 1, JSON output, image or audio), an empty, over-long or control-character question, "
         "invalid JSON or UTF-8, or a bad query value.",
    401: "Admin route without the right X-API-Key header, or feedback without the right X-Feedback-Key when "
         "PRECACHE_FEEDBACK_KEY is set.",
    404: "Unknown route, unknown or expired job, unknown answer, or the admin API disabled (no PRECACHE_API_KEY).",
    405: "Method not allowed on this path.",
    413: "Body over PRECACHE_MAX_BODY_BYTES (refused before it is read whole).",
    415: "Body is not JSON (send Content-Type: application/json).",
    422: "Feedback on an answer the cache does not offer for that question (neither its instant answer nor a "
         "suggestion).",
    429: "Over PRECACHE_RATE_LIMIT for this client address; retry after the Retry-After header's seconds.",
    503: "Neither Redis nor the database can record the question now (the body also carries the fallback "
         "answer), or the database cannot record feedback now.",
}
RATE_LIMITED = {429: ErrorBody}  # every route but /healthz, /readyz and /metrics, when PRECACHE_RATE_LIMIT is set


# Non-JSON bodies. A Server-Sent Events stream is described by the schema of one event, as
# schemathesis and OpenAPI 3.2 tools read it; each `data` is the JSON of an ask body or of `done`.
MEDIA = {
    "application/json": {"schema": {"type": "object"}},
    "text/event-stream": {
        "schema": {
            "type": "object",
            "required": ["event", "data"],
            "properties": {"event": {"enum": ["answer", "pending", "token", "quick", "detailed", "done"]},
                           "data": {"type": "string", "contentMediaType": "application/json"}},
        },
    },
}
# OpenAI's stream (POST /v1/chat/completions with stream true): `data: {chat.completion.chunk}` lines, then
# `data: [DONE]`.
CHAT_STREAM = {"schema": {"type": "string", "description": "data: lines of chat.completion.chunk JSON, then "
                                                            "data: [DONE]"}}


@dataclass(frozen=True)
class Query:
    """A query parameter: its JSON Schema is given here (Flask parses the query string by hand)."""

    name: str
    schema: dict
    description: str
    required: bool = False


@dataclass(frozen=True)
class Operation:
    """One route and method. `responses` maps a status to a response model or a media type."""

    method: str
    path: str  # OpenAPI form: /v1/jobs/{job_id}
    operation_id: str
    summary: str
    responses: dict[int, type[BaseModel] | str | tuple]
    request: type[BaseModel] | None = None  # the JSON body
    query: tuple[Query, ...] = ()
    path_params: dict[str, str] = field(default_factory=dict)  # name -> description


def _stats_window() -> Query:
    from web import stats  # the limits the view enforces, not a copy of them

    return Query(
        "window_s",
        {"type": "integer", "minimum": stats.MIN_WINDOW_S, "maximum": stats.MAX_WINDOW_S,
         "default": stats.DEFAULT_WINDOW_S},
        "the window the stats cover, in whole seconds",
    )


def operations() -> list[Operation]:
    """Every route of the app (tests/web/test_openapi.py compares this to app.url_map)."""
    return [
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
                   Query("tenant", {"type": "string", "pattern": f"^{TENANT_PATTERN.pattern}$"},
                         "the tenant, as in POST /v1/ask")),
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
            query=(Query("tenant", {"type": "string", "pattern": f"^{TENANT_PATTERN.pattern}$"}, "the tenant"),),
            path_params={"answer_id": "an answer_id from an ask or its suggestions"},
            responses={200: AnswerView, 400: ErrorBody, 404: ErrorBody, **RATE_LIMITED},
        ),
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
        Operation(
            "get", "/v1/jobs/{job_id}", "getJob", "The state of a generation job, with the answer when ready",
            path_params={"job_id": "the job_id from a 202 of POST /v1/ask"},
            responses={200: JobStatus, 404: ErrorBody, **RATE_LIMITED},
        ),
        Operation(
            "get", "/v1/stats", "getStats", "What an operator needs at a glance, over a time window",
            query=(_stats_window(),),
            responses={200: StatsResponse, 400: ErrorBody, **RATE_LIMITED},
        ),
        Operation("get", "/dashboard", "dashboard", "The stats, plotted (an HTML page)",
                  responses={200: "text/html", **RATE_LIMITED}),
        Operation("get", "/metrics", "metrics", "Prometheus metrics (text exposition format)",
                  responses={200: "text/plain"}),
        Operation("get", "/healthz", "healthz", "Liveness", responses={200: Health}),
        Operation("get", "/readyz", "readyz",
                  "Readiness: the state of Redis, the database and the broker (degraded still answers every ask)",
                  responses={200: Ready, 503: Ready}),
        *admin_operations(),
        Operation("get", "/openapi.json", "openapi", "This description of the API (OpenAPI 3.1)",
                  responses={200: "application/json", **RATE_LIMITED}),
    ]


def admin_operations() -> list[Operation]:
    """The admin routes (header X-API-Key)."""
    errors = {400: ErrorBody, 401: ErrorBody, 404: ErrorBody, **RATE_LIMITED}
    answer = {"answer_id": "the answer's id (from GET /v1/admin/review or an ask's answer_id)"}
    tenant = Query("tenant", {"type": "string", "pattern": f"^{TENANT_PATTERN.pattern}$"}, "the tenant")
    return [
        Operation("post", "/v1/admin/faq", "adminFaqImport", "Import FAQ entries (all or none)",
                  request=FaqImportRequest, responses={200: "application/json", **errors}),
        Operation("post", "/v1/admin/precompute", "adminPrecompute", "Queue every FAQ question without an answer",
                  request=TenantRequest, responses={200: "application/json", **errors}),
        Operation("get", "/v1/admin/review", "adminReview", "Answers below the quality threshold, not yet reviewed",
                  query=(tenant, Query("limit", {"type": "integer", "minimum": 1, "maximum": 1000}, "at most")),
                  responses={200: "application/json", **errors}),
        *[Operation("post", f"/v1/admin/answers/{{answer_id}}/{verb}", f"admin{verb.title()}", summary,
                    request=body, query=(tenant,), path_params=answer, responses={200: "application/json", **errors})
          for verb, summary, body in (
              ("approve", "Serve this answer whatever its quality", None),
              ("invalidate", "Never serve this answer again", None),
              ("pin", "Serve this answer first (or stop: {\"pinned\": false})", PinRequest),
              ("replace", "Replace this answer by a curated one", ReplaceRequest))],
        Operation("get", "/v1/admin/learned", "adminLearned", "Learned phrasings, who taught each and when",
                  query=(tenant,), responses={200: "application/json", **errors}),
        Operation("post", "/v1/admin/learned/{link_id}/unlearn", "adminUnlearn", "Retract one learned phrasing",
                  path_params={"link_id": "the id from GET /v1/admin/learned"},
                  responses={200: "application/json", **errors}),
    ]


def _package_version() -> str:
    try:
        return version("precache")
    except PackageNotFoundError:
        return "0.0.0"


class _Builder:
    def __init__(self):
        self.schemas: dict[str, dict] = {}

    def model(self, model: type[BaseModel], mode: str) -> dict:
        """Put the model (and the models it uses) in components; return a $ref to it."""
        schema = model.model_json_schema(ref_template=REF, mode=mode)
        for name, sub in schema.pop("$defs", {}).items():
            self._add(name, sub)
        self._add(model.__name__, schema)
        return {"$ref": REF.format(model=model.__name__)}

    def _add(self, name: str, schema: dict) -> None:
        if self.schemas.setdefault(name, schema) != schema:
            raise ValueError(f"two different schemas are named {name!r}; rename one of the models")

    def response(self, status: int, body: type[BaseModel] | str | tuple) -> dict:
        if isinstance(body, tuple):  # JSON, or a Server-Sent Events stream when the request asks for one
            json_body = self.response(status, body[0])
            json_body["content"]["text/event-stream"] = body[1]
            return json_body
        if isinstance(body, str):
            description = f"{HTTPStatus(status).phrase} ({body})"
            return {"description": description, "content": {body: MEDIA.get(body, {"schema": {"type": "string"}})}}
        if body is ErrorBody and status in ERRORS:
            return {"$ref": f"#/components/responses/Error{status}"}
        description = (body.__doc__ or HTTPStatus(status).phrase).strip().splitlines()[0]
        return {"description": description, "content": {"application/json": {"schema": self.model(body, "serialization")}}}

    def operation(self, op: Operation) -> dict:
        out: dict = {"operationId": op.operation_id, "summary": op.summary}
        params = [
            {"name": name, "in": "path", "required": True, "description": desc,
             "schema": {"type": "string", "minLength": 1, "pattern": "^[^/]+$"}}
            for name, desc in op.path_params.items()
        ]
        params += [{"name": q.name, "in": "query", "required": q.required, "description": q.description,
                    "schema": q.schema} for q in op.query]
        if params:
            out["parameters"] = params
        if op.request is not None:
            out["requestBody"] = {"required": True, "content": {
                "application/json": {"schema": self.model(op.request, "validation")}}}
        out["responses"] = {str(status): self.response(status, body) for status, body in sorted(op.responses.items())}
        out["responses"]["default"] = {"description": "Any other error (e.g. 404 unknown route, 405)",
                                       "content": {"application/json": {"schema": self.model(ErrorBody, "serialization")}}}
        return out


def build_spec() -> dict:
    """Return the OpenAPI 3.1 document for the API."""
    builder = _Builder()
    paths: dict[str, dict] = {}
    for op in operations():
        missing = set(re.findall(r"{(\w+)}", op.path)) ^ set(op.path_params)
        if missing:
            raise ValueError(f"{op.method.upper()} {op.path}: path parameters {sorted(missing)} do not match")
        paths.setdefault(op.path, {})[op.method] = builder.operation(op)
    error_ref = builder.model(ErrorBody, "serialization")
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "precache",
            "version": _package_version(),
            "description": "Instant answers for slow LLMs: precomputed, quality-scored answers served from a "
                           "SQL + Redis cache. Every error is {\"error\": {\"code\", \"message\"}}.",
        },
        "paths": paths,
        "components": {
            "schemas": dict(sorted(builder.schemas.items())),
            "responses": {
                f"Error{status}": {"description": text, "content": {"application/json": {"schema": error_ref}}}
                for status, text in ERRORS.items()
            },
        },
    }


@bp.get("/openapi.json")
def openapi():
    spec = current_app.extensions.get("precache_openapi")
    if spec is None:
        spec = current_app.extensions["precache_openapi"] = build_spec()
    return jsonify(spec)
