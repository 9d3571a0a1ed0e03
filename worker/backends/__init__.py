"""Backend registry: LLM_BACKEND names a class here."""

from importlib import import_module

from precache.config.generation import BACKENDS

from worker.backends.base import (
    NEUTRAL_MEAN_LOGPROB,
    Backend,
    BackendError,
    BackendUnavailable,
    Generation,
    GenerationStopped,
    GenerationStuck,
    GenerationTimeout,
    Message,
)

REGISTRY = BACKENDS  # name -> 'module.path:Class'; modules are imported on demand, so a worker loads only its library


def backend_class(name: str) -> type[Backend]:
    """Return the backend class registered under `name`, or named by a 'module.path:Class' of its own."""
    try:
        module, attr = (name if ":" in name else REGISTRY[name]).split(":")
    except KeyError:
        raise BackendError(f"unknown backend {name!r}; choose one of {sorted(REGISTRY)}") from None
    try:
        return getattr(import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise BackendError(f"cannot load backend {name!r}: {exc}") from None


def load_backend(settings) -> Backend:
    """Build and load the configured backend."""
    backend = backend_class(settings.llm_backend)(settings)
    backend.load()
    return backend


__all__ = ["NEUTRAL_MEAN_LOGPROB", "Backend", "BackendError", "BackendUnavailable", "Generation", "GenerationStopped",
           "GenerationStuck", "GenerationTimeout", "Message", "REGISTRY", "backend_class", "load_backend"]
