"""Reply jobs: short generations an asker waits on that are not cached answers.

POST /v1/chat/completions sends two kinds (precache.jobs.Jobs.send_reply), on the quick queue:
- "rewrite": a conversation's follow-up made a standalone question (precache/conversation.py);
- "answer": the answer to a question asked with Cache-Control: no-store, streamed to the asker as it
  is generated (precache/tokens.py) and kept nowhere — no question, answer or index entry is stored.
The text goes back in the reply's job record; a failure there makes the web fall back, never hang.
"""

import logging

from precache.context import AppContext
from precache.conversation import rewrite_chat, standalone_from
from precache.tokens import TokenSink
from worker.backends import Backend, GenerationStuck
from worker.batch import chat_for
from worker.timeout import generate_within

log = logging.getLogger(__name__)
# An answer kept nowhere: its text stays in Redis only until its asker reads it (the web deletes it then),
# or this long if the asker went away.
UNKEPT_S = 60


def reply(ctx: AppContext, backend: Backend, reply_id: str, kind: str, payload, on_timeout=lambda: None) -> dict:
    """Generate one reply and finish its job; `on_timeout` drops a model whose generation is stuck."""
    request = _request(ctx.settings, ctx.redis, reply_id, kind, payload)
    if request is None:
        ctx.jobs.finish_reply(reply_id, error=f"unknown reply kind {kind!r}")
        return {"failed": kind}
    chat, limit, sink = request
    try:
        [gen] = generate_within(backend, [chat], limit, ctx.settings.generation_timeout_s, on_token=sink)
    except Exception as exc:
        log.error("reply %s (%s) failed: %s", reply_id, kind, exc)
        if sink is not None:
            sink.end(["error"])
        if isinstance(exc, GenerationStuck):
            on_timeout()
        ctx.jobs.finish_reply(reply_id, error=f"{type(exc).__name__}: {exc}")
        return {"failed": kind}
    if sink is not None:
        sink.end([gen.finish_reason])
    text = standalone_from(gen.text, payload) if kind == "rewrite" else gen.text.strip()
    log.info("reply %s (%s): %d tokens", reply_id, kind, gen.completion_tokens)
    ctx.jobs.finish_reply(reply_id, text=text, finish_reason=gen.finish_reason,
                          keep_s=UNKEPT_S if kind == "answer" else None)
    return {"kind": kind, "tokens": gen.completion_tokens}


def _request(settings, redis, reply_id: str, kind: str, payload) -> tuple | None:
    """Return (chat, token limit, token sink or None) for this kind of reply; None for an unknown kind."""
    if kind == "rewrite":
        return rewrite_chat(payload), settings.rewrite_max_tokens, None
    if kind == "answer":
        sink = TokenSink(redis, [reply_id], ttl_s=UNKEPT_S)
        return chat_for(settings, payload), settings.llm_max_tokens_quick, sink
    return None
