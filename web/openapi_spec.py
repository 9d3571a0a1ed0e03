"""Render the API's operations as an OpenAPI 3.1 document; the body schemas come from the pydantic models.

web/openapi.py lists the operations (which routes exist, what each takes and answers) and serves the
document; this module turns that list into OpenAPI: parameters, request bodies, responses, components.
"""

import re
from dataclasses import dataclass, field
from http import HTTPStatus
from importlib.metadata import PackageNotFoundError, version

from pydantic import BaseModel

from web.responses import ErrorBody

OPENAPI_VERSION = "3.1.0"
REF = "#/components/schemas/{model}"

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


def _package_version() -> str:
    try:
        return version("precache")
    except PackageNotFoundError:
        return "0.0.0"


INFO = {
    "title": "precache",
    "description": "Instant answers for slow LLMs: precomputed, quality-scored answers served from a "
                   "SQL + Redis cache. Every error is {\"error\": {\"code\", \"message\"}}.",
}
PATH_PARAM = {"type": "string", "minLength": 1, "pattern": "^[^/]+$"}
DEFAULT_RESPONSE = "Any other error (e.g. 404 unknown route, 405)"


class _Builder:
    def __init__(self, errors: dict[int, str]):
        self.schemas: dict[str, dict] = {}
        self.errors = errors  # status -> meaning; each is a shared response in components

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

    def _json(self, model: type[BaseModel], mode: str = "serialization") -> dict:
        return {"application/json": {"schema": self.model(model, mode)}}

    def response(self, status: int, body: type[BaseModel] | str | tuple) -> dict:
        if isinstance(body, tuple):  # JSON, or a Server-Sent Events stream when the request asks for one
            json_body = self.response(status, body[0])
            json_body["content"]["text/event-stream"] = body[1]
            return json_body
        if isinstance(body, str):
            description = f"{HTTPStatus(status).phrase} ({body})"
            return {"description": description, "content": {body: MEDIA.get(body, {"schema": {"type": "string"}})}}
        if body is ErrorBody and status in self.errors:
            return {"$ref": f"#/components/responses/Error{status}"}
        description = (body.__doc__ or HTTPStatus(status).phrase).strip().splitlines()[0]
        return {"description": description, "content": self._json(body)}

    def operation(self, op: Operation) -> dict:
        out: dict = {"operationId": op.operation_id, "summary": op.summary}
        if params := _parameters(op):
            out["parameters"] = params
        if op.request is not None:
            out["requestBody"] = {"required": True, "content": self._json(op.request, "validation")}
        out["responses"] = {str(status): self.response(status, body) for status, body in sorted(op.responses.items())}
        out["responses"]["default"] = {"description": DEFAULT_RESPONSE, "content": self._json(ErrorBody)}
        return out

    def error_responses(self) -> dict:
        content = self._json(ErrorBody)
        return {f"Error{status}": {"description": text, "content": content} for status, text in self.errors.items()}


def _parameters(op: Operation) -> list[dict]:
    """The operation's path parameters, then its query parameters."""
    params = [{"name": name, "in": "path", "required": True, "description": desc, "schema": PATH_PARAM}
              for name, desc in op.path_params.items()]
    return params + [{"name": q.name, "in": "query", "required": q.required, "description": q.description,
                      "schema": q.schema} for q in op.query]


def _check_path_params(op: Operation) -> None:
    missing = set(re.findall(r"{(\w+)}", op.path)) ^ set(op.path_params)
    if missing:
        raise ValueError(f"{op.method.upper()} {op.path}: path parameters {sorted(missing)} do not match")


def build_spec(operations: list[Operation], errors: dict[int, str]) -> dict:
    """Return the OpenAPI 3.1 document for these operations; `errors` says what each error status means."""
    builder = _Builder(errors)
    paths: dict[str, dict] = {}
    for op in operations:
        _check_path_params(op)
        paths.setdefault(op.path, {})[op.method] = builder.operation(op)
    responses = builder.error_responses()
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": INFO["title"], "version": _package_version(), "description": INFO["description"]},
        "paths": paths,
        "components": {"schemas": dict(sorted(builder.schemas.items())), "responses": responses},
    }
