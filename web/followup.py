"""A chat's follow-up made standalone before the ladder: cached, else rewritten by the worker."""

import logging
import time

from precache import keys
from precache.context import AppContext
from precache.conversation import context_hash, needs_rewrite, standalone_from
from precache.jobs import READY
from precache.logs import request_id
from web.ladder import QUEUE_ERRORS

log = logging.getLogger(__name__)


def standalone(ctx: AppContext, turns: list[dict], deadline: float, keep: bool = True) -> str:
    """Return the question the last message asks, standalone.

    A message that stands alone is returned as it is. A follow-up is rewritten by the generation model
    (a short job on the quick queue); the rewrite is cached per tenant by the conversation so far and the
    message (unless `keep` is false: no-store). When no rewrite comes by `deadline`, the previous question
    and the message together stand in for it.
    """
    if not needs_rewrite(turns):
        return turns[-1]["content"].strip()
    key = keys.rewrite(ctx.ns, context_hash(turns))
    try:
        cached = ctx.redis.get(key)
        if cached is not None:
            return cached.decode()
        reply_id = ctx.jobs.send_reply("rewrite", turns, request_id.get())
        record = ctx.jobs.wait(reply_id, max(0.0, deadline - time.monotonic()))
    except QUEUE_ERRORS as exc:
        log.warning("cannot rewrite a follow-up now, it is asked with the question before it: %s", exc)
        record = None
    if not record or record["status"] != READY:
        return standalone_from("", turns)
    if keep:
        try:
            ctx.redis.set(key, record["text"], ex=ctx.settings.job_ttl_s)
        except QUEUE_ERRORS as exc:  # rewritten again next time
            log.warning("cannot cache a rewritten follow-up: %s", exc)
    return record["text"]
