"""POST /v1/chat/completions and GET /v1/models: the OpenAI wire format in front of the ladder.

The last user message (made standalone first when it needs the conversation: web/followup.py) goes
down the same ladder as POST /v1/ask. Instant answers come back at once; a miss waits for the
generated answer up to PRECACHE_CHAT_WAIT_MS, streamed token by token with `stream: true`, and gets
the fallback after that. Cache-Control: no-cache generates a new answer that replaces the cached one;
no-store answers without keeping anything. Headers: x-precache-source, x-precache-question,
x-precache-answer-id and x-precache-job-id where there is one, and x-precache-sources (JSON, ASCII: the
documents and scores of the passages the answer used) where the answer is known when headers are sent.
The body's `precache` field (the last chunk's, when streamed) carries `grounded` and the whole `sources`
(clients ignore fields they do not know).
"""

import json
import logging
import math
import re
import time
import uuid
from dataclasses import dataclass, field
from urllib.parse import quote

from flask import Blueprint, Response, current_app, jsonify, request, stream_with_context
from sqlalchemy.exc import SQLAlchemyError

from precache.context import AppContext
from precache.jobs import READY
from precache.localized import fallback_for, generates, no_model_answer
from web import caps, identity
from web.chat_schemas import parse_chat
from web.errors import ApiError
from web.followup import standalone
from web.ladder import QUEUE_ERRORS, Ask, Ladder
from web.live import KEEP_ALIVE, live_text
from web.schemas import check_tenant

log = logging.getLogger(__name__)
bp = Blueprint("chat", __name__)
CREATED = 1733270400  # when the model id was first served (OpenAI's `created` of a model)
# x-precache-question is the question as text: printable ASCII stays as it is, the rest is percent-encoded UTF-8.
HEADER_SAFE = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) != "%")


@dataclass
class Reply:
    """What answers a chat request: a text now, or a job whose answer is awaited or streamed."""

    question: str
    source: str
    text: str | None = None
    answer_id: int | None = None
    job_id: str | None = None
    kept: bool = True  # the job's answer is stored (a "reply" answer, for no-store, is not)
    grounded: bool = False  # written from passages of the team's documents
    sources: list = field(default_factory=list)  # those passages: [{"document", "excerpt", "score"}]

    def grounding(self) -> dict:
        """The body's `precache` field: how the answer was grounded, and its sources."""
        return {"grounded": self.grounded, "sources": self.sources}


@bp.get("/v1/models")
def models():
    settings = current_app.extensions["precache_ladder"].settings
    return jsonify({"object": "list", "data": [
        {"id": settings.chat_model, "object": "model", "created": CREATED, "owned_by": "precache"}]})


@bp.post("/v1/chat/completions")
def completions():
    started = time.perf_counter()
    ladder = current_app.extensions["precache_ladder"]
    chat, turns = parse_chat(request, ladder.settings)
    tenant = check_tenant(request.headers.get("x-precache-tenant"))
    ctx = ladder.for_tenant(tenant)
    policy = cache_policy(request.headers.get("Cache-Control", ""))
    deadline = time.monotonic() + ladder.settings.chat_wait_ms / 1000
    question = standalone(ctx, turns, deadline, keep=policy != "no-store")
    item = ladder.ask(question, tenant=tenant, started=started, asker=identity.asker(request, ladder.settings))
    item.deadline = 0 if chat.stream else deadline  # a stream does not wait: it follows the generation
    meta = {"id": f"chatcmpl-{uuid.uuid4().hex}", "created": int(time.time()), "model": chat.model}
    prompt_tokens = sum(_tokens(turn["content"]) for turn in turns)
    if chat.stream:
        with caps.stream_open(ladder.context.redis, item.asker, ladder.settings.streams_per_client,
                              ladder.settings.chat_wait_ms / 1000) as hand_over:
            reply = _reply(ladder, item, policy)
            usage = chat.stream_options is not None and chat.stream_options.include_usage
            events = _stream(ctx, reply, meta, deadline, prompt_tokens if usage else None)
            return hand_over(Response(stream_with_context(events), mimetype="text/event-stream", headers={
                **_headers(reply), "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}))
    reply = _reply(ladder, item, policy)
    text = reply.text if reply.text is not None else _awaited(ctx, reply, deadline)
    return jsonify(_completion(meta, text, prompt_tokens, reply.grounding())), 200, _headers(reply)


def _completion(meta: dict, text: str, prompt_tokens: int, grounding: dict) -> dict:
    """OpenAI's chat.completion body for one answer, with precache's own field."""
    return {**meta, "object": "chat.completion", "choices": [{
        "index": 0, "message": {"role": "assistant", "content": text, "refusal": None}, "logprobs": None,
        "finish_reason": "stop"}], "usage": _usage(prompt_tokens, text), "precache": grounding}


def cache_policy(header: str) -> str:
    """Return "no-store", "no-cache" or "default" from a Cache-Control request header."""
    directives = {d.strip().split("=")[0].lower() for d in header.split(",")}
    return "no-store" if "no-store" in directives else "no-cache" if "no-cache" in directives else "default"


def _reply(ladder: Ladder, item: Ask, policy: str) -> Reply:
    """Answer the question under the cache policy; a miss waits until the ask's deadline."""
    try:
        if policy == "no-store":  # an instant answer, else a reply generated for this request alone
            outcome = ladder.instant(item)
            if outcome is None and not generates(ladder.settings, item.language):
                return Reply(item.question, "fallback", no_model_answer(ladder.settings))
            if outcome is None:
                ladder.take_new_question(ladder.for_tenant(item.tenant), item)
                job_id = ladder.for_tenant(item.tenant).jobs.send_reply("answer", item.question)
                return Reply(item.question, "generated", job_id=job_id, kept=False)
            ladder.count(item, outcome)  # counted, not logged: nothing of the question is kept
            return _from_body(item.question, outcome.body)
        if policy == "no-cache" and not generates(ladder.settings, item.language):
            return Reply(item.question, "fallback", no_model_answer(ladder.settings))
        if policy == "no-cache":  # a new answer that replaces the cached one
            return Reply(item.question, "generated", job_id=ladder.renew(item))
    except (*QUEUE_ERRORS, SQLAlchemyError) as exc:
        log.warning("cannot queue a generation for a chat request: %s", exc)
        raise ApiError(503, "queue_unavailable", "the generation queue is unavailable; try again shortly") from None
    outcome = ladder.answer(item)
    if outcome.status >= 500:
        raise ApiError(503, "queue_unavailable", "the generation queue is unavailable; try again shortly")
    return _from_body(item.question, outcome.body)


def _from_body(question: str, body: dict) -> Reply:
    if body["status"] == "ready":
        return Reply(question, body["source"], body["answer"], body.get("answer_id"),
                     grounded=body.get("grounded", False), sources=body.get("sources", []))
    if body.get("job_id"):  # a miss: its answer is awaited (or streamed) before the fallback
        return Reply(question, "generated", job_id=body["job_id"])
    return Reply(question, "fallback", body["answer"])  # not queued now: kept for the sweep


def _awaited(ctx: AppContext, reply: Reply, deadline: float) -> str:
    """Return the text of the job's answer once ready, or the fallback at the deadline."""
    try:
        record_ = ctx.jobs.wait(reply.job_id, max(0.0, deadline - time.monotonic()))
        text = _finished_text(ctx, reply, record_)
    except (*QUEUE_ERRORS, SQLAlchemyError) as exc:
        log.warning("cannot wait for job %s: %s", reply.job_id, exc)
        text = None
    if text is None:
        reply.source, reply.answer_id = "fallback", None
        return fallback_for(ctx.settings, reply.question)
    return text


def _finished_text(ctx: AppContext, reply: Reply, record_: dict | None) -> str | None:
    """Return the answer of a job that is ready (and note its answer id); None otherwise."""
    if not record_ or record_["status"] != READY:
        return None
    if not reply.kept:  # read once, then kept nowhere
        ctx.jobs.forget(reply.job_id)
        return record_.get("text") or None
    payload = ctx.store.answer_by_id(int(record_["answer_id"])) if record_.get("answer_id") else None
    if payload is None:
        return None
    reply.answer_id = payload["answer_id"]
    reply.grounded, reply.sources = payload.get("grounding") == "grounded", payload.get("sources") or []
    return payload["answer"]


def _stream(ctx: AppContext, reply: Reply, meta: dict, deadline: float, prompt_tokens: int | None):
    """Yield the chunks: the role, the text (split, or as the worker generates it), the end, [DONE]."""
    def chunk(delta: dict, finish: str | None = None, **extra) -> str:
        body = {**meta, "object": "chat.completion.chunk",
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}], **extra}
        return f"data: {json.dumps(body)}\n\n"

    yield chunk({"role": "assistant", "content": ""})
    sent = []
    for piece in _pieces(ctx, reply, deadline):
        if not piece:  # nothing new for a while: a comment keeps the stream open (and finds a client gone)
            yield KEEP_ALIVE
            continue
        sent.append(piece)
        yield chunk({"content": piece})
    _streamed_sources(ctx, reply)
    yield chunk({}, "stop", precache=reply.grounding())
    if prompt_tokens is not None:
        yield f"data: {json.dumps({**meta, 'object': 'chat.completion.chunk', 'choices': [], 'usage': _usage(prompt_tokens, ''.join(sent))})}\n\n"
    yield "data: [DONE]\n\n"


def _pieces(ctx: AppContext, reply: Reply, deadline: float):
    """Yield the answer's text in pieces: an instant one in a few, a generated one as it is generated."""
    if reply.job_id is None:
        yield from split(reply.text)
        return
    streamed = False
    try:
        for piece in live_text(ctx, reply.job_id, deadline, ctx.settings.stream_heartbeat_s):
            streamed = streamed or bool(piece)
            yield piece
        if not streamed:  # nothing streamed (a backend that does not stream): the answer whole, or the fallback
            yield _awaited(ctx, reply, deadline)
        elif not reply.kept:  # the asker has the text: once the worker has written it, keep it nowhere
            ctx.jobs.wait(reply.job_id, max(0.0, deadline - time.monotonic()))
            ctx.jobs.forget(reply.job_id)
    except (*QUEUE_ERRORS, SQLAlchemyError) as exc:
        log.warning("chat stream of job %s ended early: %s", reply.job_id, exc)
        if not streamed:
            yield fallback_for(ctx.settings, reply.question)


def _streamed_sources(ctx: AppContext, reply: Reply) -> None:
    """Note the sources of a streamed job's stored answer once it is written (an instant one has them)."""
    if reply.job_id is None or not reply.kept or reply.answer_id is not None:
        return
    try:
        _finished_text(ctx, reply, ctx.jobs.wait(reply.job_id, 2.0))  # the job ends just after its last token
    except (*QUEUE_ERRORS, SQLAlchemyError) as exc:  # the answer is sent; only its sources are not
        log.warning("cannot read the sources of job %s: %s", reply.job_id, exc)


def split(text: str, parts: int = 3) -> list[str]:
    """Split a text at spaces into at most `parts` pieces that join back to it."""
    words = re.findall(r"\S+\s*|\s+", text)
    size = max(1, math.ceil(len(words) / parts))
    return ["".join(words[i:i + size]) for i in range(0, len(words), size)] or [""]


def _tokens(text: str) -> int:
    """Estimate a text's tokens (about four characters each): cached answers keep no token counts."""
    return math.ceil(len(text) / 4)


def _usage(prompt_tokens: int, text: str) -> dict:
    completion = _tokens(text)
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion, "total_tokens": prompt_tokens + completion}


def _headers(reply: Reply) -> dict:
    headers = {"x-precache-source": reply.source, "x-precache-question": quote(reply.question, safe=HEADER_SAFE)}
    if reply.answer_id is not None:
        headers["x-precache-answer-id"] = str(reply.answer_id)
    if reply.job_id is not None:
        headers["x-precache-job-id"] = reply.job_id
    if reply.sources:  # documents and scores only: an excerpt can be long, and headers have limits
        headers["x-precache-sources"] = json.dumps([{"document": s["document"], "score": s["score"]}
                                                    for s in reply.sources])
    return headers
