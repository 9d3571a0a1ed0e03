"""Worker start-up: GPU pinning, node names, and a model that cannot be loaded."""

import os
import signal
import subprocess
from pathlib import Path
import sys

import psutil
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
    result = subprocess.run([sys.executable, "-m", "cli", "worker"], env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if "cannot load the model" in line]
    assert len(lines) == 1 and "missing.gguf" in lines[0]



@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("setting, value, hint", [
    ("LLM_QUANTIZATION", "4bit", "set PRECACHE_LLM_QUANTIZATION=none"),
    ("LLM_QUANTIZATION", "8bit", "set PRECACHE_LLM_QUANTIZATION=none"),
    ("LLM_ATTENTION", "flash_attention_2", "use sdpa"),
])
def test_unsupported_transformers_settings_stop_the_worker_saying_what_to_change(env, setting, value, hint):
    env.update({"PRECACHE_LLM_BACKEND": "transformers", "PRECACHE_LLM_DEVICE": "cpu", f"PRECACHE_{setting}": value})
    result = subprocess.run([sys.executable, "-m", "cli", "worker"], env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if "cannot load the model" in line]
    assert len(lines) == 1 and f"PRECACHE_{setting}={value}" in lines[0] and hint in lines[0]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_bitsandbytes_that_cannot_run_here_stops_the_worker_saying_what_to_change(env, tmp_path):
    broken = tmp_path / "shadow" / "bitsandbytes"
    broken.mkdir(parents=True)
    (broken / "__init__.py").write_text('raise ImportError("no kernels for this machine")\n')
    env["PYTHONPATH"] = os.pathsep.join([str(broken.parent), env.get("PYTHONPATH", "")])
    env.update({"PRECACHE_LLM_BACKEND": "transformers", "PRECACHE_LLM_DEVICE": "cpu", "PRECACHE_LLM_QUANTIZATION": "4bit"})
    result = subprocess.run([sys.executable, "-m", "cli", "worker"], env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode != 0
    [line] = [line for line in result.stderr.splitlines() if "cannot load the model" in line]
    assert "bitsandbytes cannot run it on cpu here (no kernels for this machine)" in line
    assert "set PRECACHE_LLM_QUANTIZATION=none" in line

def _environ(pid: int) -> list[bytes]:
    return Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")


def _pinned(parent) -> dict[bytes, psutil.Process]:
    """Return {CUDA_VISIBLE_DEVICES entry: worker process} of the supervisor's children."""
    found = {}
    for child in parent.children():
        pinned = [e for e in _environ(child.pid) if e.startswith(b"CUDA_VISIBLE_DEVICES=")]
        found[pinned[0]] = child
    return found


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_gpu_all_starts_one_pinned_supervised_worker_per_visible_gpu(env, tmp_path):
    env["CUDA_VISIBLE_DEVICES"] = "0,1"  # the documented override: two visible devices, no nvidia-smi needed
    log = tmp_path / "all.log"
    proc = start(["worker", "--gpu", "all"], env, log)
    try:
        wait_for(lambda: log.read_text().count("ready.") == 2, proc, log, timeout=180)
        parent = psutil.Process(proc.pid)
        assert not any("libtorch" in m.path for m in parent.memory_maps())  # the supervisor never loaded torch
        workers = _pinned(parent)
        assert set(workers) == {b"CUDA_VISIBLE_DEVICES=0", b"CUDA_VISIBLE_DEVICES=1"}
        for device, child in workers.items():
            gpu = device.split(b"=")[1].decode()
            assert child.cmdline()[child.cmdline().index("--hostname") + 1] == f"gpu{gpu}@%h"
        ping = subprocess.run([sys.executable, "-m", "celery", "-A", "worker", "inspect", "ping", "--timeout", "5"],
                              env=env, capture_output=True, text=True, timeout=60)
        assert "gpu0@" in ping.stdout and "gpu1@" in ping.stdout
        killed = workers[b"CUDA_VISIBLE_DEVICES=1"]
        killed.kill()
        wait_for(lambda: _pinned(parent)[b"CUDA_VISIBLE_DEVICES=1"].pid != killed.pid, proc, log)
        assert "gpu1 exited with code -9; restarting it" in log.read_text()
        children = parent.children()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    assert not any(child.is_running() and child.status() != psutil.STATUS_ZOMBIE for child in children)


def test_gpu_all_without_any_gpu_says_so(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
    env["CUDA_VISIBLE_DEVICES"] = ""
    result = subprocess.run([sys.executable, "-m", "cli", "worker", "--gpu", "all"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "--gpu all found no GPU" in result.stderr
