"""Answer a batch of generation jobs, the body of the generation tasks, in three steps:

1. plan (worker/plan.py): tell which jobs need the model and group them into backend calls; each job that
   needs none (its work done, given up, no question) gets its outcome at once;
2. generate (worker/batch.py): one backend call per batch of a group (or per answer of background work),
   within its time, yielding each job's outcome (worker/work.py);
3. settle (worker/settle.py): act on each outcome as it comes: store and score the answer, gate it, index it,
   finish or retry its job. Only this module settles; plan and batch never do.
"""

import logging
from collections.abc import Callable

import redis

from precache import logs
from precache.context import AppContext
from worker.backends import Backend
from worker.batch import Call, Runner, chat_for
from worker.plan import JOINABLE, Plan, already_done
from worker.settle import send_back, settle
from worker.work import Failed, Group, Item, JobRequest

log = logging.getLogger(__name__)
__all__ = ["JobRequest", "answer_question", "answer_questions", "chat_for"]


def answer_question(ctx: AppContext, backend: Backend, question_id: int, job_id: str, kind: str = "quick",
                    worker: str = "") -> dict | None:
    """Run one generation job (quick, refresh, regenerate or detailed) unless its work is done; finish the job."""
    request = JobRequest(question_id, job_id, kind, logs.request_id.get(), ctx.tenant)
    [outcome] = answer_questions(ctx, backend, [request], worker)
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


def answer_questions(ctx: AppContext, backend: Backend, requests: list[JobRequest], worker: str = "",
                     askers_waiting: Callable[[], bool] = lambda: False,
                     on_stuck: Callable[[], None] = lambda: None,
                     joiners: Callable[[int], list[JobRequest]] | None = None) -> list:
    """Run a batch of jobs: settle those that need no model, generate the rest together, finish each job.

    Returns one outcome per request, in order: the answer payload, None, or the exception that failed it;
    then one per job that joined. `joiners(room)`, when given, returns up to `room` quick jobs that arrived
    meanwhile: they join the batch's first quick backend call between two of its decoding steps (on a
    backend that `joins`), or are planned and generated after it.
    Detailed answers (background work) yield to askers: before each backend call of them (each answer,
    on a backend that generates one after the other) `askers_waiting()` is asked, and when it is true the
    rest of them is sent back to their queue, pending, and the batch returns.
    An answer below the quality threshold is stored for review but not served; its job goes on with a
    regeneration (detailed settings) until one passes or QUALITY_MAX_TRIES answers failed; once the
    greedy detailed answer failed too, regenerations sample at REGENERATE_TEMPERATURE.
    `on_stuck()` is called when a generation did not stop when asked: the caller drops that model.
    """
    plan, results = Plan(), [None] * len(requests)
    for index, request in enumerate(requests):
        if (outcome := plan.add(ctx, index, request)) is not None:
            results[index] = settle(outcome, backend)  # at once: a later copy of its job finds it finished
    runner = Runner(ctx, backend, worker, on_stuck)

    def join(room: int) -> list[Item]:
        """Plan the jobs that arrived meanwhile; return those the running quick call is to generate."""
        joining = []
        for request in joiners(room) if joiners is not None else []:
            index = len(results)
            results.append(None)
            if (outcome := plan.add(ctx, index, request)) is not None:
                results[index] = settle(outcome, backend)
            elif (item := plan.take(index, JOINABLE)) is not None:
                joining.append(item)
        return joining  # the others wait in their group, generated after this one

    for group, items in plan.groups.items():  # a group that joiners reach later is generated in its turn
        if items:
            _generate_group(runner, group, items, askers_waiting, results, join if group == JOINABLE else None)
    for item in plan.duplicates:  # finished with what the first copy of its question stored
        outcome = already_done(item) or Failed(
            item, RuntimeError("the same question earlier in its batch got no servable answer"))
        results[item.index] = settle(outcome, backend)
    return results


def _generate_group(runner: Runner, group: Group, items: list[Item], askers_waiting: Callable[[], bool],
                    results: list, join: Callable[[int], list[Item]] | None = None) -> None:
    """Generate and settle one group in batches of LLM_MAX_BATCH (one at a time when alone, or background work
    on a backend that generates one chat after another); background work gives way to waiting askers. `join`:
    jobs that arrive meanwhile join the running call (each call takes them until it ends)."""
    settings, background = runner.ctx.settings, group.level == "detailed"
    size = 1 if group.alone or (background and runner.backend.sequential) else settings.llm_max_batch
    for start in range(0, len(items), size):
        if background and _yield_to_askers(items[start:], askers_waiting):
            return  # the jobs sent back end with None
        chunk = items[start:start + size]
        # Seeded by the questions and their tries: each sampled try differs from the one before.
        seed = sum(item.question.id * 1000 + item.gated for item in chunk) if group.sampled else 0
        call = Call(group.level, settings.regenerate_temperature if group.sampled else 0.0, seed,
                    preempt=askers_waiting if background else None, join=join)
        for outcome in runner.generate(chunk, call):
            results[outcome.index] = settle(outcome, runner.backend)


def _yield_to_askers(items: list[Item], askers_waiting: Callable[[], bool]) -> bool:
    """Send background jobs back to their queue when askers' work waits; tell whether it did."""
    try:
        if not askers_waiting():
            return False
        send_back(items)
    except (redis.RedisError, OSError) as exc:  # the broker cannot say or take them: go on generating
        log.warning("cannot yield to askers: %s", exc)
        return False
    return True
