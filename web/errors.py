"""Error responses: {"error": {"code", "message", "type"}} for every client mistake, never a bare 500.

`type` is the class of error in OpenAI's wire format, so that OpenAI clients of /v1/chat/completions
raise their usual exceptions with the message (and `param`, the field at fault, where there is one).
"""

import logging

from flask import current_app, jsonify
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)


TYPES = {401: "authentication_error", 403: "permission_error", 404: "not_found_error", 429: "rate_limit_error"}


class ApiError(Exception):
    """A client error with its HTTP status, a code and a message saying what to fix."""

    def __init__(self, status: int, code: str, message: str, param: str | None = None,
                 retry_after: int | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.param = status, code, message, param
        self.retry_after = retry_after  # seconds, sent as Retry-After


def error_type(status: int) -> str:
    return TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")


def error_body(status: int, code: str, message: str, param: str | None = None, **extra) -> dict:
    """Return the body of an error response: the error, and whatever the response gives besides."""
    error = {"code": code, "message": message, "type": error_type(status)}
    if param is not None:
        error["param"] = param
    return {"error": error, **extra}


def error_response(status: int, code: str, message: str, param: str | None = None, **extra):
    return jsonify(error_body(status, code, message, param, **extra)), status


def register(app) -> None:
    """Install the JSON error handlers on the app."""
    app.register_error_handler(ApiError, _api_error)
    app.register_error_handler(413, _too_large)
    app.register_error_handler(HTTPException, _http)
    app.register_error_handler(Exception, _unexpected)


def _api_error(exc: ApiError):
    body, status = error_response(exc.status, exc.code, exc.message, exc.param)
    return body, status, {"Retry-After": str(exc.retry_after)} if exc.retry_after is not None else {}


def _too_large(_exc):
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    return error_response(413, "body_too_large", f"request body is over {limit} bytes; send less")


def _http(exc: HTTPException):
    code = (exc.name or "error").lower().replace(" ", "_")
    return error_response(exc.code or 400, code, exc.description or exc.name)


def _unexpected(exc: Exception):
    log.exception("unhandled error")
    return error_response(500, "internal", "the server failed; the error is logged")
