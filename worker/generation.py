"""Answer a batch of generation jobs, the body of the generation tasks, in three steps:

1. plan (worker/plan.py): settle the jobs that need no model, group the rest into backend calls;
2. generate (worker/batch.py): one backend call per group (or per answer of background work), within its time;
3. settle (worker/settle.py): store and score each answer, gate it, index it, finish or retry its job.
"""

import logging

import redis

from precache.context import AppContext
from precache import logs
from worker.backends import Backend
from worker.batch import Call, Runner, chat_for
from worker.plan import Group, Item, JobRequest, Plan, plan_batch
from worker.settle import already_settled, fail, send_back

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
                     askers_waiting=lambda: False, on_stuck=lambda: None) -> list:
    """Run a batch of jobs: settle those already done, generate the rest together, finish each job.

    Returns one outcome per request, in order: the answer payload, None, or the exception that failed it.
    Detailed answers (background work) yield to askers: before each backend call of them (each answer,
    on a backend that generates one after the other) `askers_waiting()` is asked, and when it is true the
    rest of them is sent back to their queue, pending, and the batch returns.
    An answer below the quality threshold is stored for review but not served; its job goes on with a
    regeneration (detailed settings) until one passes or QUALITY_MAX_TRIES answers failed; once the
    greedy detailed answer failed too, regenerations sample at REGENERATE_TEMPERATURE.
    `on_stuck()` is called when a generation did not stop when asked: the caller drops that model.
    """
    plan = plan_batch(ctx, requests)
    runner = Runner(ctx, backend, worker, on_stuck)
    for group, items in plan.groups.items():
        _generate_group(runner, group, items, plan, askers_waiting)
    _settle_duplicates(plan)
    return plan.outcomes


def _generate_group(runner: Runner, group: Group, items: list[Item], plan: Plan, askers_waiting) -> None:
    """Generate one group in batches of LLM_MAX_BATCH (one at a time when alone, or background work on a
    backend that generates one chat after another); background work gives way to waiting askers."""
    settings, background = runner.ctx.settings, group.level == "detailed"
    size = 1 if group.alone or (background and runner.backend.sequential) else settings.llm_max_batch
    for start in range(0, len(items), size):
        if background and _yield_to_askers(items[start:], askers_waiting, plan.outcomes):
            return
        chunk = items[start:start + size]
        # Seeded by the questions and their tries: each sampled try differs from the one before.
        seed = sum(item.question.id * 1000 + item.gated for item in chunk) if group.sampled else 0
        call = Call(group.level, settings.regenerate_temperature if group.sampled else 0.0, seed,
                    preempt=askers_waiting if background else None)
        for i, outcome in runner.generate(chunk, call):
            plan.outcomes[i] = outcome


def _yield_to_askers(items: list[Item], askers_waiting, outcomes: list) -> bool:
    """Send background jobs back to their queue when askers' work waits; tell whether it did."""
    try:
        if not askers_waiting():
            return False
        for i, _ in send_back(items):
            outcomes[i] = None
    except (redis.RedisError, OSError) as exc:  # the broker cannot say or take them: go on generating
        log.warning("cannot yield to askers: %s", exc)
        return False
    return True


def _settle_duplicates(plan: Plan) -> None:
    """Finish each later copy of a question in the batch with what its first copy stored."""
    for item in plan.duplicates:
        settled = already_settled(item.ctx, item.question, item.request)
        plan.outcomes[item.index] = settled[0] if settled is not None else fail(
            item, RuntimeError("the same question earlier in its batch got no servable answer"))
