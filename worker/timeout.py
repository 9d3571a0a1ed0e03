"""A time limit on one generation that holds in the solo pool, where Celery's own is not enforced."""

import contextvars
import logging
import threading

from worker.backends import Backend, GenerationTimeout

log = logging.getLogger(__name__)


def generate_within(backend: Backend, chats: list, max_new_tokens: int, timeout_s: float, **sampling) -> list:
    """Run `backend.generate` in a thread and wait at most `timeout_s` for it.

    A generation past its time raises GenerationTimeout; its thread cannot be stopped from
    outside (native code), so it is left to end on its own and the caller drops the backend.
    """
    outcome: dict = {}

    def run():
        try:
            outcome["value"] = backend.generate(chats, max_new_tokens, **sampling)
        except BaseException as exc:  # handed to the task's thread below
            outcome["error"] = exc

    context = contextvars.copy_context()  # the request id, for the backend's log lines
    thread = threading.Thread(target=context.run, args=(run,), name="generation", daemon=True)
    thread.start()
    thread.join(timeout_s)
    if thread.is_alive():
        log.error("generation still running after %.0f s: the job fails and the model is reloaded", timeout_s)
        raise GenerationTimeout(f"the model gave no answer within {timeout_s:g} s (PRECACHE_GENERATION_TIMEOUT_S)")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]
