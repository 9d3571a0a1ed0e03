"""The Celery application both sides share: web sends tasks by name, workers run them."""

from celery import Celery
from kombu import Exchange, Queue

# Highest priority first: a worker on several queues drains them in this order of declaration.
QUICK, DETAILED, PRECOMPUTE, HOUSEKEEPING = "quick", "detailed", "precompute", "housekeeping"
GENERATION_QUEUES = (QUICK, DETAILED, PRECOMPUTE)
ALL_QUEUES = (*GENERATION_QUEUES, HOUSEKEEPING)

GENERATE_QUICK = "worker.tasks.generate_quick_answer"
GENERATE_DETAILED = "worker.tasks.generate_detailed_answer"
GENERATION_TIME_LIMIT_S = 300  # hard limit of one generation task
HOUSEKEEPING_TIME_LIMIT_S = 120
PRECOMPUTE_FAQ = "worker.tasks.precompute_faq_answers"
SWEEP = "worker.tasks.sweep_lost_asks"


def celery_config(settings) -> dict:
    """Return the Celery settings for these precache settings."""
    return {
        "broker_url": settings.broker_url,
        "broker_connection_retry_on_startup": True,
        # A message unacked this long is redelivered (a killed worker's task comes back); it must outlast
        # the longest generation (acks_late), which the settings check. See docs/reliability.md.
        # Workers look for such messages every 10 s (a scan in every poll: kombu's default scans one in ten).
        "broker_transport_options": {"visibility_timeout": settings.broker_visibility_timeout_s,
                                     "unacked_restore_throttle": 1},
        "task_serializer": "json",
        "result_serializer": "json",
        "event_serializer": "json",
        "accept_content": ["json"],
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "task_time_limit": GENERATION_TIME_LIMIT_S,
        "task_ignore_result": True,
        "worker_prefetch_multiplier": 1,
        "worker_send_task_events": True,
        "task_send_sent_event": True,
        "task_queues": [Queue(name, Exchange(name), routing_key=name) for name in ALL_QUEUES],
        "task_default_queue": HOUSEKEEPING,
        "task_routes": {
            "worker.tasks.generate_quick_*": {"queue": QUICK},
            "worker.tasks.generate_detailed_*": {"queue": DETAILED},
            "worker.tasks.precompute_*": {"queue": PRECOMPUTE},
            "worker.tasks.*": {"queue": HOUSEKEEPING},
        },
        "beat_schedule": {
            "precompute-faq-answers": {"task": PRECOMPUTE_FAQ, "schedule": settings.precompute_interval_s},
            "sweep-lost-asks": {"task": SWEEP, "schedule": settings.sweep_interval_s},
        },
        "beat_schedule_filename": str(settings.var_dir / "celerybeat-schedule"),
    }


def make_celery(settings_factory, include=()) -> Celery:
    """Build the Celery app; settings are read lazily, the first time Celery needs them."""
    app = Celery("precache", include=list(include))
    app.add_defaults(lambda: celery_config(settings_factory()))
    return app
