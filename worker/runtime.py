"""Per-process worker state: the context and the model, each loaded once."""

import logging
import threading

from precache.config import load_settings
from precache.context import Context
from worker import app
from worker.backends import Backend, load_backend

log = logging.getLogger(__name__)
_lock = threading.RLock()
_context: Context | None = None
_backend: Backend | None = None


def context() -> Context:
    """Return this process's context, building it on first use."""
    global _context
    with _lock:
        if _context is None:
            _context = Context(load_settings(), celery=app)
        return _context


def backend() -> Backend:
    """Return this process's loaded model, loading it on first use."""
    global _backend
    with _lock:
        if _backend is None:
            settings = context().settings
            log.info("loading model %s with backend %s", settings.llm_model, settings.llm_backend)
            _backend = load_backend(settings)
            log.info("model %s ready", settings.llm_model)
        return _backend


def discard_backend() -> None:
    """Forget a model whose generation is stuck (not closed: its thread may still use it); the next task loads one."""
    global _backend
    with _lock:
        _backend = None


def close() -> None:
    """Free the model and the connections of this process."""
    global _backend, _context
    with _lock:
        if _backend is not None:
            _backend.close()
            _backend = None
        if _context is not None:
            _context.close()
            _context = None
