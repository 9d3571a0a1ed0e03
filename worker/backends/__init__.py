"""Backend registry: LLM_BACKEND names a class here."""

from importlib import import_module

from worker.backends.base import NEUTRAL_MEAN_LOGPROB, Backend, BackendError, Generation, Message

# Modules are imported on demand so a worker only loads the library it uses.
REGISTRY = {
    "llama_cpp": "worker.backends.llama_cpp:LlamaCppBackend",
    "transformers": "worker.backends.transformers:TransformersBackend",
    "openai": "worker.backends.openai:OpenAIBackend",
}


def backend_class(name: str) -> type[Backend]:
    """Return the backend class registered under `name`."""
    try:
        module, attr = REGISTRY[name].split(":")
    except KeyError:
        raise BackendError(f"unknown backend {name!r}; choose one of {sorted(REGISTRY)}") from None
    return getattr(import_module(module), attr)


def load_backend(settings) -> Backend:
    """Build and load the configured backend."""
    backend = backend_class(settings.llm_backend)(settings)
    backend.load()
    return backend


__all__ = ["NEUTRAL_MEAN_LOGPROB", "Backend", "BackendError", "Generation", "Message", "REGISTRY", "backend_class", "load_backend"]
