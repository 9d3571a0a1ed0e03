"""Logging for every process: text or JSON lines, each record carrying the request id it serves."""

import logging
import re
import uuid
from contextvars import ContextVar

from pythonjsonlogger.json import JsonFormatter

request_id: ContextVar[str] = ContextVar("request_id", default="-")
_VALID_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"
JSON_FIELDS = "%(asctime)s %(levelname)s %(name)s %(request_id)s %(message)s"
# The password of a URL (scheme://user:PASSWORD@host): database and Redis URLs carry one.
_URL_PASSWORD = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^/\s:@]*:)[^@\s/]+@", re.IGNORECASE)


def redact(text: str) -> str:
    """Return `text` with the password of every URL in it replaced by ***."""
    return _URL_PASSWORD.sub(r"\1***@", text)


class RequestIdFilter(logging.Filter):
    """Stamp each record with the request id of the current context, and keep URL passwords out of it."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        message = record.getMessage()
        if "://" in message:
            record.msg, record.args = redact(message), ()
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        return True


def new_request_id(offered: str | None = None) -> str:
    """Return the client's X-Request-ID when it is safe to log, else a fresh id."""
    if offered and _VALID_ID.fullmatch(offered):
        return offered
    return uuid.uuid4().hex


def formatter(json_lines: bool) -> logging.Formatter:
    if json_lines:
        return JsonFormatter(JSON_FIELDS, rename_fields={"levelname": "level", "asctime": "time"})
    return logging.Formatter(TEXT_FORMAT)


def install(handler: logging.Handler, json_lines: bool) -> None:
    """Give a handler our format and the request-id stamp."""
    handler.setFormatter(formatter(json_lines))
    handler.addFilter(RequestIdFilter())


def configure(settings) -> None:
    """Send this process's logs to stderr in the configured format."""
    root = logging.getLogger()
    if not any(getattr(h, "_precache", False) for h in root.handlers):
        handler = logging.StreamHandler()
        handler._precache = True
        install(handler, settings.log_json)
        root.addHandler(handler)
    root.setLevel(settings.log_level)
