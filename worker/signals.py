"""Worker start-up: a generation worker loads its model before it takes any task."""

import logging

from celery import signals

from precache import logs
from precache.db import report_schema
from precache.queueing import GENERATION_QUEUES
from worker import runtime
from worker.backends import BackendError

log = logging.getLogger(__name__)


@signals.worker_init.connect
def load_model(sender, **_):
    """Say so when the schema is not this version's; load the model once, in the process that will run the tasks."""
    report_schema(runtime.context().engine, log)
    queues = sender.app.amqp.queues
    consumed = set(queues.consume_from or queues)
    if not consumed & set(GENERATION_QUEUES):
        return
    try:
        runtime.backend()
    except BackendError as exc:
        # SystemExit is not swallowed by Celery's signal dispatch: the worker stops, saying why.
        raise SystemExit(f"precache worker: cannot load the model: {exc}") from None


@signals.worker_shutdown.connect
def free_model(**_):
    """Free the model before the interpreter tears the native library down."""
    runtime.close()


@signals.after_setup_logger.connect
@signals.after_setup_task_logger.connect
def use_precache_log_format(logger, **_):
    """Give Celery's handlers our format (text or JSON) and the request-id stamp."""
    json_lines = runtime.context().settings.log_json
    for handler in logger.handlers:
        logs.install(handler, json_lines)


@signals.task_prerun.connect
def adopt_request_id(task, **_):
    """Log a task under the id of the request that queued it."""
    logs.request_id.set(task.request.get("request_id") or "-")
