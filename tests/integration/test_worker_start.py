"""Worker start-up: GPU pinning, node names, and a model that cannot be loaded."""

import subprocess
from pathlib import Path
import sys

import pytest
import redis as redis_lib

from tests.conftest import BROKER_URL
from tests.integration.conftest import stack_env, start, stop, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def env(database_url, tmp_path):
    redis_lib.Redis.from_url(BROKER_URL).flushdb()
    return stack_env(database_url, tmp_path / "var")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_gpu_worker_is_pinned_and_named(env, tmp_path):
    log = tmp_path / "gpu.log"
    proc = start(["worker", "--gpu", "1"], env, log)
    try:
        wait_for(lambda: "ready." in log.read_text(), proc, log)
        environ = Path(f"/proc/{proc.pid}/environ").read_bytes().split(b"\0")
        assert b"CUDA_VISIBLE_DEVICES=1" in environ  # set before the worker process imported torch
        assert "gpu1@" in log.read_text()
        ping = subprocess.run([sys.executable, "-m", "celery", "-A", "worker", "inspect", "ping", "--timeout", "5"],
                              env=env, capture_output=True, text=True, timeout=60)
        assert "gpu1@" in ping.stdout
        assert "quick" in log.read_text() and "housekeeping" not in log.read_text().split("[tasks]")[0]
    finally:
        stop(proc)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_unloadable_model_stops_the_worker_with_one_clear_line(env, tmp_path):
    env["PRECACHE_LLM_MODEL"] = str(tmp_path / "missing.gguf")
    result = subprocess.run([sys.executable, "-m", "precache", "worker"], env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if "cannot load the model" in line]
    assert len(lines) == 1 and "missing.gguf" in lines[0]
