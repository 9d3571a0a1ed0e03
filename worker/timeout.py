"""A time limit on one generation that holds in any pool, where Celery's own is not enforced inside it."""

import contextvars
import logging
import threading
import time

from worker.backends import Backend, GenerationStopped, GenerationStuck, GenerationTimeout

log = logging.getLogger(__name__)
STOP_GRACE_S = 30.0  # how long a generation asked to stop may take to reach its next token (at most its own time)
PREEMPT_POLL_S = 0.25  # how often a preemptible generation asks whether to give way


class GenerationPreempted(GenerationStopped):
    """Background work stopped between two tokens so that askers' work runs first; it is sent again."""


def generate_within(backend: Backend, chats: list, max_new_tokens: int, timeout_s: float,
                    grace_s: float = STOP_GRACE_S, preempt=None, **sampling) -> list:
    """Run `backend.generate` in a thread and wait at most `timeout_s` for it.

    Past its time the generation is asked to stop before its next token and waited for up to
    `grace_s`: stopped, it raises GenerationTimeout and the model is free for the next call, never in
    use by two threads. A generation that does not stop (a native call that never returns) raises
    GenerationStuck: its thread is left to end on its own, and the caller drops the backend.
    `preempt()`, when given, is asked every PREEMPT_POLL_S; when true the generation is stopped the same
    way and GenerationPreempted raised (background work giving the model to askers).
    """
    outcome: dict = {}
    stop = threading.Event()

    def run():
        try:
            with backend.exclusive():  # a stuck call keeps it: nothing else enters that model
                outcome["value"] = backend.generate(chats, max_new_tokens, stop=stop, **sampling)
        except BaseException as exc:  # handed to the task's thread below
            outcome["error"] = exc

    context = contextvars.copy_context()  # the request id, for the backend's log lines
    thread = threading.Thread(target=context.run, args=(run,), name="generation", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout_s
    preempted = False
    while thread.is_alive() and (left := deadline - time.monotonic()) > 0:
        thread.join(min(left, PREEMPT_POLL_S) if preempt is not None else left)
        if preempt is not None and thread.is_alive() and preempt():
            preempted = True
            break
    if thread.is_alive():
        stop.set()
        thread.join(min(grace_s, timeout_s))  # the stop takes at most as long as the generation was given
        if thread.is_alive():
            log.error("generation still running %.0f s after it was asked to stop: the model is dropped",
                      min(grace_s, timeout_s))
            raise GenerationStuck(f"the model gave no answer within {timeout_s:g} s (PRECACHE_GENERATION_TIMEOUT_S) "
                                  "and did not stop")
        if preempted:
            raise GenerationPreempted("stopped for askers' work")
        log.warning("generation of %d chats passed %.0f s (a busy machine?): stopped", len(chats), timeout_s)
        raise GenerationTimeout(f"the model gave no answer within {timeout_s:g} s (PRECACHE_GENERATION_TIMEOUT_S)")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]
