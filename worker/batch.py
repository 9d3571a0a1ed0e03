"""How one backend call runs: a batch of chats generated within its time limit, each question's generation
counted as started and ended (a worker that dies in between counts a crash), answers streamed to askers,
a batch too slow for its time generated again in halves. Each job's outcome (worker/work.py) is yielded as
soon as it is known, for the caller to settle: nothing here stores an answer or finishes a job.
"""

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace

import redis

from precache import keys
from precache.context import AppContext
from precache.documents.grounding import grounded_chat
from precache.telemetry import record_batch, record_generation
from precache.tokens import TokenSink
from worker.backends import Backend, Generation, GenerationStuck, GenerationTimeout
from worker.timeout import GenerationPreempted, generate_within
from worker.work import Failed, Generated, Item, Outcome, Preempted, Slow

log = logging.getLogger(__name__)


def chat_for(settings, question: str, level: str = "quick", passages=()) -> list[dict]:
    """Return the chat sent to the model for a question at an answer level (from these passages, when given)."""
    system = settings.system_prompt
    if level == "detailed":
        system = f"{system} {settings.detailed_instruction}"
    if passages:
        return grounded_chat(system, settings.grounded_instruction, question, list(passages))
    return [{"role": "system", "content": system}, {"role": "user", "content": question}]


@dataclass(frozen=True)
class Call:
    """One backend call's settings: the batch's answer level, sampling, time limit and what may stop it."""

    level: str
    temperature: float = 0.0
    seed: int = 0
    timeout_s: float | None = None  # None: PRECACHE_GENERATION_TIMEOUT_S, or more for a job sent again for it
    preempt: Callable[[], bool] | None = None  # background work: stopped when this says askers' work waits
    until: float | None = None  # the monotonic time by which its tries, halves included, must have ended
    join: Callable[[int], list] | None = None  # jobs that arrived meanwhile (Items), up to a room: they join it


@dataclass(frozen=True)
class Runner:
    """What runs backend calls: the worker's context and model, its name, and what drops a stuck model."""

    ctx: AppContext
    backend: Backend
    worker: str = ""
    on_stuck: Callable[[], None] = lambda: None

    def generate(self, items: list[Item], call: Call) -> Iterator[Outcome]:
        """Generate the answers of one batch in one backend call; yield each job's outcome, to be settled.

        A batch that passes its time on a busy machine is stopped and generated again in halves, down to
        one question, which gets twice the time, up to four times PRECACHE_GENERATION_TIMEOUT_S; past that
        its job is `Slow`: sent again later like any transient error. Slow is never failed at once. A batch
        with `preempt` (background work) is stopped between two tokens when askers' work waits, and its jobs
        are `Preempted`. The caller settles each half's outcomes before the next half is generated.
        """
        settings = self.ctx.settings
        # Retries of a slow batch end well within the visibility timeout: its messages stay unacknowledged.
        call = replace(call, timeout_s=call.timeout_s or _budget(self.ctx, items),
                       until=call.until or time.monotonic() + 0.8 * settings.broker_visibility_timeout_s)
        log.info("generating a %s batch of %d%s", call.level, len(items),
                 f" (sampled at {call.temperature:g})" if call.temperature else "")
        started = time.perf_counter()
        try:
            gens = self._within(items, call)
        except Exception as exc:
            yield from self._failed(items, call, exc)
            return
        latency_ms = (time.perf_counter() - started) * 1000
        log.info("generated a %s batch of %d in %.0f ms", call.level, len(items), latency_ms)
        record_batch(self.ctx.redis, self.backend.name, self.worker)
        for item, gen in zip(items, gens, strict=True):
            self.ctx.redis.incr(keys.generations(call.level))
            # Each answer of a batch counts its share of the batch's time, so totals give real throughput.
            record_generation(self.ctx.redis, self.backend.name, self.worker, latency_ms / 1000 / len(items),
                              gen.completion_tokens)
            yield Generated(item, gen, call.level, latency_ms)

    def _within(self, items: list[Item], call: Call) -> list[Generation]:
        """Run the backend call, counted as started and ended; askers' quick answers are streamed as generated.

        Jobs that join it (`call.join`, on a backend that `joins`) are appended to `items` as they join."""
        settings = self.ctx.settings
        limit = settings.llm_max_tokens_detailed if call.level == "detailed" else settings.llm_max_tokens_quick
        streamed = ("quick", "renew")
        chats = [chat_for(settings, item.question.text, call.level, item.passages) for item in items]
        _count(self.ctx, items, "started")
        sink = TokenSink(self.ctx.redis, [item.request.job_id if item.request.kind in streamed else None
                                          for item in items])
        started = time.monotonic()

        def admit(room: int) -> list[list[dict]]:
            """The chats of the jobs that join now (none once half the call's time is spent)."""
            if time.monotonic() - started > call.timeout_s / 2:
                return []
            joining = call.join(room)
            _count(self.ctx, joining, "started")
            for item in joining:
                items.append(item)
                sink.job_ids.append(item.request.job_id if item.request.kind in streamed else None)
            if joining:
                log.info("%d quick jobs joined the running batch", len(joining))
            return [chat_for(settings, item.question.text, call.level, item.passages) for item in joining]

        joins = {"admit": admit} if call.join is not None and self.backend.joins else {}
        try:
            gens = generate_within(self.backend, chats, limit, call.timeout_s, preempt=call.preempt,
                                   temperature=call.temperature, seed=call.seed, on_token=sink, **joins)
        except Exception:  # it returned, with an error (a process that dies counts no end: a crash)
            sink.end(["error"] * len(items))
            _count(self.ctx, items, "ended")
            raise
        _count(self.ctx, items, "ended")
        sink.end([gen.finish_reason for gen in gens])
        return gens

    def _failed(self, items: list[Item], call: Call, exc: Exception) -> Iterable[Outcome]:
        """Return the outcomes of a batch whose call raised: preempted, generated again smaller, or failed."""
        if isinstance(exc, GenerationPreempted):
            return [Preempted(item) for item in items]
        if isinstance(exc, GenerationTimeout) and not isinstance(exc, GenerationStuck):
            return self._slow(items, call, exc)
        log.error("generating a %s batch of %d failed: %s", call.level, len(items), exc)
        if isinstance(exc, GenerationStuck):
            self.on_stuck()  # its thread may still run: the next batch gets a fresh model
        return [Failed(item, exc) for item in items]

    def _slow(self, items: list[Item], call: Call, exc: Exception) -> Iterator[Outcome]:
        """Generate again a batch stopped for passing its time: in halves, then alone with more time, while
        the attempt (its time and its stop) ends before `call.until`; past that, its jobs are `Slow`."""
        def again(part: list[Item], timeout: float) -> Iterable[Outcome]:
            if time.monotonic() + 2 * timeout > call.until:  # sent again later, with the time it was to get
                return [Slow(item, exc, timeout) for item in part]
            # Halves are neither preempted nor joined.
            return self.generate(part, replace(call, timeout_s=timeout, preempt=None, join=None))

        if len(items) > 1:
            half = len(items) // 2
            log.warning("a %s batch of %d passed %.0f s: generating it again in two halves", call.level, len(items),
                        call.timeout_s)
            yield from again(items[:half], call.timeout_s)
            yield from again(items[half:], call.timeout_s)  # its room judged once the first half is settled
        elif call.timeout_s < 4 * self.ctx.settings.generation_timeout_s:
            log.warning("a %s answer passed %.0f s: generating it again with %.0f s", call.level, call.timeout_s,
                        2 * call.timeout_s)
            yield from again(items, 2 * call.timeout_s)
        else:
            yield from (Slow(item, exc, call.timeout_s) for item in items)


def _budget(ctx: AppContext, items: list[Item]) -> float:
    """Return the time limit of a batch: PRECACHE_GENERATION_TIMEOUT_S, or more when one of its jobs was sent
    again for passing its time (a slow machine stays slow: its retry keeps the longer time it was to get)."""
    pipe = ctx.redis.pipeline()
    for item in items:
        pipe.hget(keys.job(item.request.job_id), "timeout_s")
    try:
        budgets = [float(budget) for budget in pipe.execute() if budget]
    except (redis.RedisError, ValueError):  # not knowing: the usual time
        budgets = []
    return max([ctx.settings.generation_timeout_s, *budgets])


def _count(ctx: AppContext, items: list[Item], field: str) -> None:
    """Count a generation of each question of a batch as started, or as ended (it returned or raised)."""
    pipe = ctx.redis.pipeline()  # tenant contexts share the connection; one round trip for the batch
    for item in items:
        name = keys.generating(item.ctx.ns, item.question.qhash)
        pipe.hincrby(name, field, 1)
        pipe.expire(name, ctx.settings.job_ttl_s)
    try:
        pipe.execute()
    except redis.RedisError as exc:
        log.warning("cannot count a batch of %d generations as %s: %s", len(items), field, exc)
