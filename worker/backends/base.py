"""The generation backend interface: a batch of chats in, texts with token counts and confidence out."""

import math
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

Message = dict[str, str]  # {"role": "system" | "user" | "assistant", "content": str}
# Called with (index of the chat in the batch, text) as each piece of an answer is generated.
OnToken = Callable[[int, str], None]

# The mean log-probability given when a backend cannot see token probabilities (an endpoint that
# returns no logprobs): log 0.5, a confidence of 0.5, which neither vouches for an answer nor
# condemns it, so the other quality components decide.
NEUTRAL_MEAN_LOGPROB = math.log(0.5)


class BackendError(RuntimeError):
    """A backend cannot load its model or generate; the message says why in one line."""


def one_line(exc: Exception) -> str:
    """Return the first line of an exception's message, or its type name when it has none."""
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


class BackendUnavailable(BackendError):
    """A transient failure (an endpoint busy or unreachable): the generation is retried, a bounded number of times."""


class GenerationTimeout(BackendError):
    """The model gave no answer within PRECACHE_GENERATION_TIMEOUT_S and was stopped between two tokens: the
    machine is slow. The model is free again; the batch is generated again, split (worker/batch.py)."""


class GenerationStuck(GenerationTimeout):
    """The model gave no answer in time and did not stop when asked (a call that never returns): the job fails
    and the worker loads a fresh model, leaving the stuck one to its thread."""


class GenerationStopped(BackendError):
    """A generation stopped because its caller asked (the `stop` event of `generate`)."""


@dataclass(frozen=True)
class Generation:
    """One generated answer."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    mean_logprob: float  # mean log-probability of the generated tokens, <= 0
    finish_reason: str  # "stop" (end of turn) or "length" (max tokens reached)


class Backend(ABC):
    """A loaded model. Built once per worker process; `generate` may be called many times."""

    name: str
    # True when a batch is generated one chat after another (no speed gained by batching): background work is
    # then given to the model one answer at a time, so that askers' work waits for one answer at most.
    sequential: bool = False
    # True when `generate` takes `admit`: new chats join a running call between two decoding steps.
    joins: bool = False

    def __init__(self, settings):
        self.settings = settings

    @abstractmethod
    def load(self) -> None:
        """Load the model; raise BackendError with a one-line reason when it cannot be loaded."""

    @abstractmethod
    def generate(self, chats: list[list[Message]], max_new_tokens: int, temperature: float = 0.0,
                 seed: int = 0, on_token: OnToken | None = None,
                 stop: threading.Event | None = None) -> list[Generation]:
        """Generate one answer per chat, in order, through the model's chat template.

        Greedy at temperature 0 (the default: the same chat gives the same answer); above 0 tokens are
        sampled at that temperature from a generator seeded with `seed` (a regeneration of an answer
        that failed the quality gate, which greedy decoding would only repeat). mean_logprob is then
        still measured under the model's own (untempered) distribution where the backend can.
        `on_token(i, text)`, when given, receives the text of chat i as it is generated (joined, it is the
        answer before stripping); a backend that cannot stream calls it never, and the answer arrives whole.
        `stop`, when set, makes the generation raise GenerationStopped before its next token (a backend whose
        one call cannot be interrupted, an HTTP request, bounds it with its own timeout instead).
        A backend that `joins` also takes `admit(room)`: called between two decoding steps, it returns up to
        `room` new chats (room: the free sequences, PRECACHE_LLM_JOIN_ROOM included), which join the call; their
        answers follow the others' in the list returned, in the order they joined, and `on_token` numbers them
        after the chats given.
        """

    def hurry(self) -> None:
        """Chats wait to join the running call (any thread may say so): a backend that `joins` may end the
        decoding step under way early, so that they start at once; the step is then done again. Others ignore it."""

    def exclusive(self) -> threading.Lock:
        """Return the lock that a caller holds while this model generates: one generation at a time.

        A native model run by two threads at once aborts the process (llama.cpp:
        `GGML_ASSERT(i1 >= 0 && i1 < ne1)` in ggml-cpu/ops.cpp), so a second call waits for the first.
        """
        return self.__dict__.setdefault("_exclusive", threading.Lock())  # setdefault: one lock, whoever asks first

    def close(self) -> None:
        """Free the model (called when the worker shuts down)."""
