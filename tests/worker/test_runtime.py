"""Per-process worker state (worker/runtime.py): the context and the model, each loaded once."""

import pytest

from tests.integration.conftest import free_port
from worker import runtime


@pytest.fixture
def environment(config, monkeypatch, tmp_path):
    """The process's settings come from its environment, as a worker started by `celery -A worker` reads them:
    the test's database and Redis, and an OpenAI-compatible endpoint that is not up (only probed at load)."""
    monkeypatch.chdir(tmp_path)
    for name, value in {"DATABASE_URL": config["database_url"], "REDIS_URL": config["redis_url"],
                        "BROKER_URL": config["broker_url"], "VAR_DIR": str(config["var_dir"]),
                        "LLM_BACKEND": "openai", "LLM_BASE_URL": f"http://127.0.0.1:{free_port()}/v1"}.items():
        monkeypatch.setenv(f"PRECACHE_{name}", value)
    runtime.close()
    yield
    runtime.close()


def test_the_context_is_built_once_from_the_environment(environment, config):
    ctx = runtime.context()
    assert runtime.context() is ctx
    assert ctx.settings.database_url == config["database_url"] and ctx.settings.redis_url == config["redis_url"]
    assert ctx.redis.ping()


def test_the_model_is_loaded_once_and_again_after_it_is_discarded(environment):
    backend = runtime.backend()
    assert runtime.backend() is backend and backend.name == "openai"
    runtime.discard_backend()
    fresh = runtime.backend()
    assert fresh is not backend
    assert backend.client is not None  # discarded, not closed: a stuck generation's thread may still use it


def test_close_frees_the_model_and_the_next_use_builds_anew(environment):
    ctx, backend = runtime.context(), runtime.backend()
    runtime.close()
    assert backend.client is None  # the model's connections are closed
    assert runtime.context() is not ctx and runtime.backend() is not backend
