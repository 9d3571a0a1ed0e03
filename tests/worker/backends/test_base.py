"""What every backend shares (worker/backends/base.py): its errors, its answers, one generation at a time."""

import threading

import pytest

from worker.backends.base import (Backend, BackendError, BackendUnavailable, Generation, GenerationStopped,
                                  GenerationStuck, GenerationTimeout, one_line)


class Echo(Backend):
    """The smallest real backend: it answers each chat with its last message."""

    name = "echo"

    def load(self) -> None:
        self.loaded = True

    def generate(self, chats, max_new_tokens, temperature=0.0, seed=0, on_token=None, stop=None):
        return [Generation(chat[-1]["content"][:max_new_tokens], len(chat), 1, 0.0, "stop") for chat in chats]


def test_an_error_is_told_in_one_line():
    assert one_line(RuntimeError("cannot load model.gguf\nTraceback (most recent call last): ...")) == \
        "cannot load model.gguf"
    assert one_line(TimeoutError()) == "TimeoutError"


def test_a_stuck_generation_is_a_timeout_and_every_failure_a_backend_error():
    assert issubclass(GenerationStuck, GenerationTimeout)
    for error in (BackendUnavailable, GenerationTimeout, GenerationStuck, GenerationStopped):
        assert issubclass(error, BackendError) and issubclass(error, RuntimeError)
    assert not issubclass(GenerationStopped, GenerationTimeout)  # asked to stop is not slow


def test_a_backend_must_load_and_generate():
    class Half(Backend):
        name = "half"

        def load(self) -> None:
            pass

    with pytest.raises(TypeError, match="generate"):
        Half(settings=None)
    backend = Echo(settings=None)
    backend.load()
    assert backend.generate([[{"role": "user", "content": "hello"}]], 3)[0].text == "hel"
    assert backend.sequential is False


def test_an_answer_cannot_be_changed_once_made():
    answer = Generation("Paris.", 12, 2, -0.1, "stop")
    with pytest.raises(AttributeError):
        answer.text = "Lyon."


def test_one_model_is_one_lock_whoever_asks_and_two_models_are_two():
    first, second = Echo(settings=None), Echo(settings=None)
    locks = []
    threads = [threading.Thread(target=lambda: locks.append(first.exclusive())) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(lock) for lock in locks}) == 1 and locks[0] is first.exclusive()
    assert second.exclusive() is not first.exclusive()
    with first.exclusive():
        assert not first.exclusive().acquire(blocking=False)  # a second generation on it waits
        assert second.exclusive().acquire(blocking=False)
    second.exclusive().release()
