"""A test backend with faults on demand, loaded by a real worker as
PRECACHE_LLM_BACKEND=tests.integration.fault_backend:FaultBackend.

The question picks the behaviour: "hang" never returns, "empty" answers "", "broken" raises a
BackendError, "flaky" is unavailable twice then answers, "down" is always unavailable, "crash" kills the
worker process with SIGSEGV (a model crashing in native code), "slow" generates for $FAULT_SLOW_S (60)
seconds unless asked to stop (then stops, as the real backends do between two tokens); any other
question is answered at once. Every load and every call is appended to $FAULT_BACKEND_LOG, so a
test can count attempts and model loads.
"""

import os
import signal
import time
from pathlib import Path

from worker.backends import Backend, BackendError, BackendUnavailable, Generation, GenerationStopped


def _note(line: str) -> None:
    with open(os.environ["FAULT_BACKEND_LOG"], "a", encoding="utf-8") as out:
        out.write(line + "\n")


def calls(log_path, question: str) -> int:
    """Return how many generations of `question` the backend was asked for."""
    return log_path.read_text().splitlines().count(f"call {question}")


class FaultBackend(Backend):
    name = "fault"

    def load(self) -> None:
        _note("load")

    def generate(self, chats, max_new_tokens, temperature=0.0, seed=0, on_token=None, stop=None):
        return [self._one(chat[-1]["content"], stop) for chat in chats]

    def _one(self, question: str, stop=None) -> Generation:
        attempt = calls(_log_path(), question)
        _note(f"call {question}")
        words = set(question.lower().replace("?", " ").split())
        if "crash" in words:
            os.kill(os.getpid(), signal.SIGSEGV)
        if "hang" in words:
            time.sleep(3600)
        if "slow" in words and stop is not None:  # a long generation that stops between tokens when asked
            if stop.wait(float(os.environ.get("FAULT_SLOW_S", "60"))):
                raise GenerationStopped("stopped between two tokens, as asked")
        if "empty" in words:
            return Generation("   ", 10, 0, 0.0, "stop")
        if "broken" in words:
            raise BackendError("the model failed on this input")
        if "down" in words or ("flaky" in words and attempt < 2):
            raise BackendUnavailable("the model endpoint is busy")
        return Generation(f"An answer to: {question}", 10, 5, -0.1, "stop")


def _log_path() -> Path:
    return Path(os.environ["FAULT_BACKEND_LOG"])
