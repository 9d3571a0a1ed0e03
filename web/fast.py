"""The exact hit served before Flask: most asks of a busy help assistant are the same few questions.

A WSGI layer in front of the Flask app answers `POST /v1/ask` when the body is a plain quick ask
(`question`, optionally `wait_ms` and `detail: "quick"`, no tenant) whose question the hot cache
holds: the ladder's own hit path (web/ladder.py: `Ladder.hot`) reads the answer and logs the ask in one
Redis round trip (precache.ask_writer.Writer.hit_and_push), and the response is the one the Flask view
gives (web/ask.py), with its X-Request-ID. Anything else — another route, a tenant, a detailed ask, a body Flask must refuse, a miss, rate limiting
on — goes to Flask untouched (a miss is marked, so Flask does not read the hot cache again).
"""

import io
import json
import time

from werkzeug.wrappers import Request

from precache import logs
from precache.normalize import normalize, question_hash
from web import identity
from web.errors import ApiError
from web.ladder import Ask, Ladder
from web.schemas import check_question

PLAIN_FIELDS = {"question", "wait_ms", "detail"}
HOT_MISSED = "precache.hot_missed"  # environ key: this layer read the hot cache for the ask, without a hit


class ExactHits:
    """Wrap a Flask app's WSGI callable with the fast path of exact hits."""

    def __init__(self, app, ladder: Ladder):
        self.app, self.next = app, app.wsgi_app
        self.ladder, self.settings = ladder, ladder.settings

    def __call__(self, environ, start_response):
        if not self._may_serve(environ):
            return self.next(environ, start_response)
        started = time.perf_counter()
        length = _content_length(environ)
        if not 0 < length <= self.settings.max_body_bytes:
            return self.next(environ, start_response)  # Flask says what is wrong with it
        body = environ["wsgi.input"].read(length)
        environ["wsgi.input"] = io.BytesIO(body)  # read again by Flask if it is not served here
        served = self._serve(environ, body, started)
        if served is None:
            return self.next(environ, start_response)
        payload, request_id = served
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(payload))),
                                  ("X-Request-ID", request_id)])
        return [payload]

    def _may_serve(self, environ) -> bool:
        """A JSON POST /v1/ask, with no rate limit and a batched ask log: one this path may answer."""
        return (environ.get("REQUEST_METHOD") == "POST" and environ.get("PATH_INFO") == "/v1/ask"
                and not self.settings.rate_limit.strip() and self.settings.ask_log_flush_ms > 0
                and environ.get("CONTENT_TYPE", "").startswith("application/json"))

    def _serve(self, environ, body: bytes, started: float) -> tuple[bytes, str] | None:
        """Return (the response body, its request id) for an exact hit of a plain ask; None otherwise."""
        question = self._plain_question(body)
        if question is None or not (normalized := normalize(question)):
            return None
        request_id = logs.new_request_id(environ.get("HTTP_X_REQUEST_ID"))
        logs.request_id.set(request_id)
        # The asker goes into the entry the hit already pushes: no round trip of its own.
        item = Ask(question, normalized, question_hash(normalized), started=started,
                   asker=identity.asker(Request(environ), self.settings))
        outcome = self.ladder.hot(item)  # the view's own hit path: one entry, one script, one count
        if outcome is None:
            environ[HOT_MISSED] = item.hot_missed
            return None
        return (json.dumps(outcome.body, separators=(",", ":")) + "\n").encode(), request_id

    def _plain_question(self, body: bytes) -> str | None:
        """Return the question of a body the Flask view would accept as a plain quick ask; None otherwise."""
        try:
            data = json.loads(body)
        except (ValueError, RecursionError):
            return None
        if not isinstance(data, dict) or not set(data) <= PLAIN_FIELDS or not isinstance(data.get("question"), str):
            return None
        wait_ms = data.get("wait_ms", 0)
        if type(wait_ms) is not int or not 0 <= wait_ms <= self.settings.max_wait_ms:
            return None
        if data.get("detail", "quick") != "quick":
            return None
        try:  # not the embedder's window (Ladder.ask): a question past it is never stored, so never a hot hit
            check_question(data["question"], self.settings.max_question_chars)
        except ApiError:
            return None
        return data["question"]


def _content_length(environ) -> int:
    """The request's Content-Length; -1 when it is missing or not a number."""
    try:
        return int(environ.get("CONTENT_LENGTH") or -1)
    except ValueError:
        return -1
