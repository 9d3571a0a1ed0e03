"""`precache up`: the whole system on embedded defaults, stopped together."""

import os
import signal
import subprocess
import sys
import time

import psutil
import pytest
import requests

from tests.integration.conftest import free_port

pytestmark = pytest.mark.integration


def _wait_http(url: str, proc, log, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()[-3000:]
        try:
            if requests.get(url, timeout=2).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(0.3)
    pytest.fail(f"{url} did not come up:\n{log.read_text()[-3000:]}")


def test_up_starts_everything_and_ctrl_c_stops_everything(tmp_path):
    web, flower, redis_port = free_port(), free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRECACHE_")}
    env.update(PRECACHE_REDIS_URL=f"redis://127.0.0.1:{redis_port}/0", PRECACHE_WEB_PORT=str(web),
               PRECACHE_FLOWER_PORT=str(flower), PRECACHE_LLM_MAX_TOKENS_QUICK="24", PRECACHE_WEB_WORKERS="1",
               PRECACHE_QUALITY_THRESHOLD="0")  # 24-token answers are cut: gate off (see conftest.stack_env)
    log = tmp_path / "up.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "cli", "up"], cwd=tmp_path, env=env,
                                stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_http(f"http://127.0.0.1:{web}/readyz", proc, log)
        assert f"started a private redis-server on 127.0.0.1:{redis_port}" in log.read_text()
        assert (tmp_path / "var" / "precache.db").exists()  # the embedded SQLite default
        r = requests.post(f"http://127.0.0.1:{web}/v1/ask", json={"question": "What is an API?", "wait_ms": 60000},
                          timeout=120)
        assert r.status_code == 200 and r.json()["source"] == "generated"
        again = requests.post(f"http://127.0.0.1:{web}/v1/ask", json={"question": "what is an api"}, timeout=10)
        assert again.json()["source"] == "exact"
        _wait_http(f"http://127.0.0.1:{flower}/api/workers", proc, log)
        deadline, workers = time.monotonic() + 60, {}
        while not any(name.startswith("cpu@") for name in workers) and time.monotonic() < deadline:
            time.sleep(1)  # Flower's inspect replies come in when the worker has time for them
            workers = requests.get(f"http://127.0.0.1:{flower}/api/workers?refresh=1", timeout=30).json()
        assert any(name.startswith("cpu@") for name in workers), workers
        # A worker that dies (a model crash, the OOM killer) is started again, and misses are answered.
        [worker] = [c for c in psutil.Process(proc.pid).children() if "--queues" in c.cmdline()]
        worker.kill()
        deadline = time.monotonic() + 30
        while "worker exited with code -9; starting it again" not in log.read_text():
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.3)
        r = requests.post(f"http://127.0.0.1:{web}/v1/ask", json={"question": "What is a CPU?", "wait_ms": 60000},
                          timeout=120)
        assert r.status_code == 200 and r.json()["source"] == "generated"
        children = psutil.Process(proc.pid).children(recursive=True)
        assert len(children) >= 5  # redis, web, worker, beat, flower (and their own children)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            assert proc.wait(timeout=60) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    time.sleep(1)
    assert not [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
