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
    thread = _start(backend, outcome, chats, max_new_tokens, stop=stop, **sampling)
    preempted = _wait(thread, timeout_s, preempt)
    if thread.is_alive():
        _stop(thread, stop, min(grace_s, timeout_s), timeout_s)
        if preempted:
            raise GenerationPreempted("stopped for askers' work")
        log.warning("generation of %d chats passed %.0f s (a busy machine?): stopped", len(chats), timeout_s)
        raise GenerationTimeout(f"the model gave no answer within {timeout_s:g} s (PRECACHE_GENERATION_TIMEOUT_S)")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def _start(backend: Backend, outcome: dict, *args, **kwargs) -> threading.Thread:
    """Start `backend.generate(*args, **kwargs)` in a thread that puts its value or error in `outcome`."""

    def run():
        try:
            with backend.exclusive():  # a stuck call keeps it: nothing else enters that model
                outcome["value"] = backend.generate(*args, **kwargs)
        except BaseException as exc:  # handed to the task's thread
            outcome["error"] = exc

    context = contextvars.copy_context()  # the request id, for the backend's log lines
    thread = threading.Thread(target=context.run, args=(run,), name="generation", daemon=True)
    thread.start()
    return thread


def _wait(thread: threading.Thread, timeout_s: float, preempt) -> bool:
    """Wait for the thread up to `timeout_s`; return whether `preempt()` said to give way first."""
    deadline = time.monotonic() + timeout_s
    while thread.is_alive() and (left := deadline - time.monotonic()) > 0:
        thread.join(min(left, PREEMPT_POLL_S) if preempt is not None else left)
        if preempt is not None and thread.is_alive() and preempt():
            return True
    return False


def _stop(thread: threading.Thread, stop: threading.Event, grace_s: float, timeout_s: float) -> None:
    """Ask the generation to stop and wait `grace_s` for it; raise GenerationStuck if it does not."""
    stop.set()
    thread.join(grace_s)  # the stop takes at most as long as the generation was given
    if thread.is_alive():
        log.error("generation still running %.0f s after it was asked to stop: the model is dropped", grace_s)
        raise GenerationStuck(f"the model gave no answer within {timeout_s:g} s (PRECACHE_GENERATION_TIMEOUT_S) "
                              "and did not stop")
