"""Reply jobs: short generations an asker waits on that are not cached answers.

POST /v1/chat/completions sends two kinds (precache.jobs.Jobs.send_reply), on the quick queue:
- "rewrite": a conversation's follow-up made a standalone question (precache/conversation.py);
- "answer": the answer to a question asked with Cache-Control: no-store, streamed to the asker as it
  is generated (precache/tokens.py) and kept nowhere — no question, answer or index entry is stored.
  In a tenant with documents it is written from the relevant passages (or is the not-in-documents or
  extractive answer, without the model), as a cached answer would be.
The text goes back in the reply's job record; a failure there makes the web fall back, never hang.
"""

import logging

from precache.context import AppContext
from precache.conversation import rewrite_chat, standalone_from
from precache.documents.grounding import extractive_answer
from precache.documents.retrieval import ground
from precache.language import language_of
from precache.localized import generates, not_in_documents_answer
from precache.semantic.embedders import embedder_for
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
    grounding, passages = None, []
    if kind == "answer":
        try:
            grounding, passages = ground(ctx, embedder_for(ctx.settings, threads=None), payload)
        except Exception as exc:  # never the model's memory instead
            log.error("reply %s: cannot retrieve its passages: %s", reply_id, exc)
            ctx.jobs.finish_reply(reply_id, error=f"{type(exc).__name__}: {exc}")
            return {"failed": kind}
        if (text := _without_model(ctx.settings, payload, grounding, passages)) is not None:
            ctx.jobs.finish_reply(reply_id, text=text, keep_s=UNKEPT_S)
            return {"kind": kind, "tokens": 0}
    request = _request(ctx, reply_id, kind, payload, passages)
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


def _without_model(settings, question: str, grounding: str | None, passages: list) -> str | None:
    """Return the answer the tenant's documents give a question without the model (not in them, or their own
    sentences), else None."""
    if grounding == "not_in_documents":
        return not_in_documents_answer(settings, question)
    if grounding == "grounded" and (settings.grounded_answers == "extractive"
                                    or not generates(settings, language_of(question))):
        return extractive_answer(question, passages)
    return None


def _request(ctx: AppContext, reply_id: str, kind: str, payload, passages: list) -> tuple | None:
    """Return (chat, token limit, token sink or None) for this kind of reply (an answer from its passages, when
    it has some); None for an unknown kind."""
    settings = ctx.settings
    if kind == "rewrite":
        return rewrite_chat(payload), settings.rewrite_max_tokens, None
    if kind == "answer":
        sink = TokenSink(ctx.redis, [reply_id], ttl_s=UNKEPT_S)
        return chat_for(settings, payload, passages=passages), settings.llm_max_tokens_quick, sink
    return None
