"""Quick jobs that arrive while a quick batch is being generated join it (continuous batching).

celery-batches hands a worker's buffered messages to its pool as a batch (worker/tasks.py). While a
quick batch runs on a backend that can take new sequences between two decoding steps (`joins`: the
llama.cpp backend), the next quick messages are offered here instead of queueing behind it; the running
batch takes them at its next step, as many as it has room for, and answers them with the rest. Those it
did not take when it ends go to the pool as a batch of their own. A joined message is acknowledged once
its job is settled (acks_late, as any other): a worker that dies mid-batch loses none.
"""

import threading


class Joining:
    """The messages offered to the running quick batch, while one runs that takes them."""

    def __init__(self):
        self._lock = threading.Lock()
        self._open = False
        self._offered: list = []
        self._hurry = None

    def open(self, hurry=None) -> None:
        """A quick batch that takes joiners starts; `hurry()` tells its backend that some wait (Backend.hurry)."""
        with self._lock:
            self._open, self._hurry = True, hurry

    def offer(self, requests: list) -> bool:
        """Offer messages to the running batch; False when none runs (the caller hands them to the pool)."""
        with self._lock:
            if not self._open:
                return False
            self._offered.extend(requests)
            hurry = self._hurry
        if hurry is not None:
            hurry()
        return True

    def take(self, room: int) -> list:
        """Return up to `room` of the messages offered, oldest first."""
        with self._lock:
            taken, self._offered = self._offered[:room], self._offered[room:]
            return taken

    def close(self) -> list:
        """The running batch ends: return the messages it did not take (the caller hands them to the pool)."""
        with self._lock:
            self._open, self._hurry = False, None
            left, self._offered = self._offered, []
            return left


quick = Joining()  # this worker process's: one pool thread, so one running quick batch at a time
