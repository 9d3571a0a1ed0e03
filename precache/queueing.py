"""The Celery application both sides share: web sends tasks by name, workers run them."""

from celery import Celery
from kombu import Exchange, Queue

# Highest priority first: a worker on several queues drains them in this order of declaration.
QUICK, DETAILED, PRECOMPUTE, HOUSEKEEPING = "quick", "detailed", "precompute", "housekeeping"
GENERATION_QUEUES = (QUICK, DETAILED, PRECOMPUTE)
ALL_QUEUES = (*GENERATION_QUEUES, HOUSEKEEPING)

GENERATE_QUICK = "worker.tasks.generate_quick_answer"
GENERATE_DETAILED = "worker.tasks.generate_detailed_answer"
# A short generation an asker waits on: a chat's follow-up made standalone, an answer kept nowhere (no-store).
REPLY = "worker.tasks.reply"
GENERATION_TASKS = (GENERATE_QUICK, GENERATE_DETAILED)
GENERATION_TIME_LIMIT_S = 300  # hard limit of one generation task
HOUSEKEEPING_TIME_LIMIT_S = 120
PRECOMPUTE_FAQ = "worker.tasks.precompute_faq_answers"
SWEEP = "worker.tasks.sweep_lost_asks"
REEMBED = "worker.tasks.reembed_questions"
# Scheduled jobs (celery beat): task name -> the setting holding its period in seconds.
SCHEDULE = {
    PRECOMPUTE_FAQ: "precompute_interval_s",
    "worker.tasks.predictive_precompute": "predictive_interval_s",
    "worker.tasks.refresh_stale_answers": "refresh_interval_s",
    "worker.tasks.regenerate_low_quality_answers": "regenerate_interval_s",
    "worker.tasks.prune_ask_log": "prune_interval_s",
    SWEEP: "sweep_interval_s",
    REEMBED: "reembed_interval_s",
}


# What each kind of generation job runs, and on which queue (workers drain quick, then detailed, then precompute):
# a refresh regenerates the quick answer of a question past its TTL while the old one is still served, and
# nobody waits on it or on a scheduled regeneration. "renew" is an asker's Cache-Control: no-cache: a new
# answer now, which replaces the cached one.
JOB_KINDS = {
    "quick": (GENERATE_QUICK, {}, QUICK),
    "refresh": (GENERATE_QUICK, {"force": True}, PRECOMPUTE),
    "detailed": (GENERATE_DETAILED, {}, DETAILED),
    "regenerate": (GENERATE_QUICK, {"regenerate": True}, PRECOMPUTE),
    "renew": (GENERATE_QUICK, {"renew": True}, QUICK),
}


def job_kind(task: str, kwargs: dict) -> str:
    """Return the kind of job (JOB_KINDS) a generation message runs, from its task name and keyword arguments."""
    if task == GENERATE_DETAILED:
        return "detailed"
    return ("regenerate" if kwargs.get("regenerate") else "refresh" if kwargs.get("force")
            else "renew" if kwargs.get("renew") else "quick")


def queue_for(task: str, kwargs: dict | None = None) -> str:
    """The one place that decides a task's queue: a generation job's by its kind, a reply on the askers' queue,
    precompute jobs on theirs, every other task (the scheduled ones, the sweep) on housekeeping."""
    if task in GENERATION_TASKS:
        return JOB_KINDS[job_kind(task, kwargs or {})][2]
    if task == REPLY:
        return QUICK
    return PRECOMPUTE if task.startswith("worker.tasks.precompute_") else HOUSEKEEPING


def route(name, args, kwargs, options, task=None, **_) -> dict:
    """Celery's router (task_routes): each task sent without a queue goes where queue_for says."""
    return {"queue": queue_for(name, kwargs)}


# What does not depend on the settings.
FIXED_CONFIG = {
    "broker_connection_retry_on_startup": True,
    "task_serializer": "json",
    "result_serializer": "json",
    "event_serializer": "json",
    "accept_content": ["json"],
    "task_acks_late": True,
    "task_reject_on_worker_lost": True,
    "task_time_limit": GENERATION_TIME_LIMIT_S,
    "task_ignore_result": True,
    "worker_send_task_events": True,
    "task_send_sent_event": True,
    "task_default_queue": HOUSEKEEPING,
}


def celery_config(settings) -> dict:
    """Return the Celery settings for these precache settings."""
    return {
        **FIXED_CONFIG,
        "broker_url": settings.broker_url,
        "broker_transport_options": _transport_options(settings),
        # Generation tasks are batched (worker/tasks.py): a worker of one pool thread must hold a whole batch unacked.
        # A batch's messages, and room for those that join it while it runs (worker/joining.py).
        "worker_prefetch_multiplier": settings.llm_max_batch + settings.llm_join_room,
        "task_queues": [Queue(name, Exchange(name), routing_key=name) for name in ALL_QUEUES],
        "task_routes": (route,),
        "beat_schedule": _beat_schedule(settings),
        "beat_schedule_filename": str(settings.var_dir / "celerybeat-schedule"),
    }


def _transport_options(settings) -> dict:
    return {
        # A message unacked this long is redelivered (a killed worker's task comes back); it
        # must outlast the longest batch (acks_late), which the settings check (docs/reliability.md).
        "visibility_timeout": settings.broker_visibility_timeout_s,
        # Sweep for such messages every few seconds (kombu's default sweeps only every ~100 s).
        "unacked_restore_interval": min(10, max(1, settings.broker_visibility_timeout_s // 5)),
        "unacked_restore_throttle": 1,
        # Redis: poll a worker's queues in declared order (quick first), not round robin.
        "queue_order_strategy": "priority",
    }


def _beat_schedule(settings) -> dict:
    """Each scheduled task every its period; a run that could not start before the next is due is dropped, not stacked."""
    return {
        task.rsplit(".", 1)[1].replace("_", "-"): {
            "task": task, "schedule": getattr(settings, period), "options": {"expires": getattr(settings, period)},
        }
        for task, period in SCHEDULE.items()
    }


def make_celery(settings_factory, include=()) -> Celery:
    """Build the Celery app; settings are read lazily, the first time Celery needs them."""
    app = Celery("precache", include=list(include))
    app.add_defaults(lambda: celery_config(settings_factory()))
    return app
