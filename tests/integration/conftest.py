"""A running stack for end-to-end tests: a real Celery worker with the SmolLM2 GGUF and gunicorn."""

import contextlib
import os
import random
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis as redis_lib
import requests

from tests.conftest import BROKER_URL, REDIS_URL, migrated_database


def free_port() -> int:
    """A free port below the kernel's ephemeral range: a port the kernel hands out (bind to 0) can be taken as
    the local end of an outgoing connection before the server binds it (seen once beside a CPU hog:
    gunicorn refused "Address already in use" for 10 s)."""
    low = _ephemeral_low()
    for _ in range(200):
        port = random.randrange(max(1024, low - 12000), low)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port below the ephemeral range")


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def stack_env(database_url: str, var_dir: Path, **extra) -> dict:
    env = dict(os.environ)
    env.update({
        "PRECACHE_DATABASE_URL": database_url,
        "PRECACHE_REDIS_URL": REDIS_URL,
        "PRECACHE_BROKER_URL": BROKER_URL,
        "PRECACHE_VAR_DIR": str(var_dir),
        "PRECACHE_LLM_MAX_TOKENS_QUICK": "24",
        "PRECACHE_LLM_MAX_TOKENS_DETAILED": "40",
        "PRECACHE_LLM_THREADS": "2",
        # A 24-token model cuts answers and they score low: the gate is off for the plumbing
        # tests (threshold 0); tests/integration/test_quality_gate.py runs it at its default.
        "PRECACHE_QUALITY_THRESHOLD": "0",
    })
    env.update({f"PRECACHE_{k.upper()}": str(v) for k, v in extra.items()})
    return env


def start(args: list[str], env: dict, log: Path) -> subprocess.Popen:
    with log.open("wb") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen([sys.executable, "-m", "cli", *args], env=env,
                                stdout=out, stderr=subprocess.STDOUT)


def wait_for(predicate, proc: subprocess.Popen, log: Path, timeout: float = 120):
    """Poll until `predicate()` is true; fail with the process log if it exits or times out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"process exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(Exception):
            if predicate():
                return
        time.sleep(0.2)
    pytest.fail(f"timed out waiting; log:\n{log.read_text()[-3000:]}")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class Stack:
    def __init__(self, base_url: str, env: dict, redis_client, logs: Path):
        self.base_url, self.env, self.redis, self.logs = base_url, env, redis_client, logs

    def ask(self, question: str, **extra) -> requests.Response:
        return requests.post(f"{self.base_url}/v1/ask", json={"question": question, **extra}, timeout=60)

    def wait_job(self, job_id: str, timeout: float = 120) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            body = requests.get(f"{self.base_url}/v1/jobs/{job_id}", timeout=10).json()
            assert "status" in body, (body, (self.logs / "web.log").read_text()[-3000:])
            if body["status"] != "pending":
                return body
            time.sleep(0.2)
        raise AssertionError(f"job {job_id} still pending after {timeout} s")

    def quick_answers(self) -> dict[str, int]:
        """Return {question text: number of quick answers generated for it} from SQL."""
        from sqlalchemy import create_engine, func, select

        from precache.models import Answer, Question

        engine = create_engine(self.env["PRECACHE_DATABASE_URL"])
        query = (select(Question.text, func.count(Answer.id)).join(Answer)
                 .where(Answer.level == "quick").group_by(Question.text))
        with engine.connect() as conn:
            counts = dict(conn.execute(query).all())
        engine.dispose()
        return counts

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "cli", *args], env=self.env,
                              capture_output=True, text=True, timeout=600)


@contextlib.contextmanager
def running_stack(kind: str, tmp: Path, **extra):
    """Start a real worker and gunicorn on a fresh database of `kind`; yield a Stack; stop them."""
    cache = redis_lib.Redis.from_url(REDIS_URL)
    cache.flushdb()
    redis_lib.Redis.from_url(BROKER_URL).flushdb()
    with contextlib.contextmanager(migrated_database)(kind, tmp) as url:
        env = stack_env(url, tmp / "var", **extra)
        port = free_port()
        worker = start(["worker"], env, tmp / "worker.log")
        web = start(["web", "--port", str(port)], env, tmp / "web.log")
        try:
            wait_for(lambda: "ready." in (tmp / "worker.log").read_text(), worker, tmp / "worker.log")
            base = f"http://127.0.0.1:{port}"
            wait_for(lambda: requests.get(f"{base}/readyz", timeout=2).ok, web, tmp / "web.log")
            yield Stack(base, env, cache, tmp)
        finally:
            stop(web)
            stop(worker)
            cache.close()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def stack(request, tmp_path_factory):
    with running_stack(request.param, tmp_path_factory.mktemp("stack")) as running:
        yield running
