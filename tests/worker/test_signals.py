"""Worker start-up and task signals (worker/signals.py): a generation worker loads its model before any task,
says why when it cannot, frees it at shutdown; tasks log under their request's id."""

import contextvars
import io
import json
import logging
from types import SimpleNamespace

import pytest

from precache import logs
from precache.config import load_settings
from precache.queueing import make_celery
from tests.worker.test_runtime import environment  # noqa: F401 - fixture: settings from the environment
from worker import runtime, signals


def worker_on(*queues):
    """A worker's sender as Celery gives it to worker_init: its app, consuming these queues."""
    app = make_celery(load_settings)
    app.amqp.queues.select(list(queues))
    return SimpleNamespace(app=app)


def test_a_generation_worker_loads_its_model_at_start_and_frees_it_at_shutdown(environment):
    signals.load_model(worker_on("quick", "detailed"))
    backend = runtime._backend
    assert backend is not None and runtime.backend() is backend  # loaded once, before any task
    signals.free_model()
    assert runtime._backend is None and backend.client is None


def test_a_worker_of_housekeeping_alone_loads_no_model(environment):
    signals.load_model(worker_on("housekeeping"))
    assert runtime._backend is None


def test_a_model_that_cannot_load_stops_the_worker_saying_why(environment, monkeypatch, tmp_path):
    monkeypatch.setenv("PRECACHE_LLM_BACKEND", "llama_cpp")
    monkeypatch.setenv("PRECACHE_LLM_MODEL", str(tmp_path / "missing.gguf"))
    runtime.close()  # settings are read again
    with pytest.raises(SystemExit, match="precache worker: cannot load the model: "):
        signals.load_model(worker_on("quick"))


def test_celery_log_handlers_get_the_configured_format(environment, monkeypatch):
    monkeypatch.setenv("PRECACHE_LOG_JSON", "true")
    stream = io.StringIO()
    logger = logging.getLogger("tests.worker.signals")
    handler = logging.StreamHandler(stream)
    logger.addHandler(handler)
    try:
        signals.use_precache_log_format(logger)
        contextvars.copy_context().run(lambda: (logs.request_id.set("req-7"), logger.warning("a line")))
    finally:
        logger.removeHandler(handler)
    line = json.loads(stream.getvalue())
    assert line["message"] == "a line" and line["request_id"] == "req-7"


def test_a_task_logs_under_the_id_of_the_request_that_queued_it():
    def run(request):
        signals.adopt_request_id(SimpleNamespace(request=request))
        return logs.request_id.get()

    assert contextvars.copy_context().run(run, {"request_id": "abc-123"}) == "abc-123"
    assert contextvars.copy_context().run(run, {}) == "-"
