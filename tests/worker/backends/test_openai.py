"""The openai backend against llama-cpp-python's own OpenAI-compatible server on the SmolLM2 GGUF."""

import http.server
import logging
import math
import socket
import subprocess
import sys
import threading
import time

import pytest
import requests

from precache.config import load_settings
from tests.integration.conftest import free_port
from worker.backends import NEUTRAL_MEAN_LOGPROB, BackendError, BackendUnavailable
from worker.backends.models import resolve_model
from worker.backends.openai import OpenAIBackend

pytestmark = pytest.mark.model

CAPITAL = [{"role": "user", "content": "What is the capital of France?"}]
PASSWORD = [{"role": "user", "content": "How do I reset my password?"}]
SECRET = "sk-test-never-logged-4711"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """Start `python -m llama_cpp.server` on the SmolLM2 GGUF; yield its base URL."""
    port = free_port()
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    argv = [sys.executable, "-m", "llama_cpp.server", "--model", str(resolve_model("smollm2").gguf_path),
            "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "1024", "--n_threads", "2",
            "--logits_all", "true"]
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            try:
                if requests.get(f"{base}/models", timeout=2).ok:
                    break
            except requests.RequestException:
                time.sleep(0.3)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture
def make_backend():
    """Return a factory of loaded backends on a base URL; close them after the test."""
    made = []

    def make(base_url: str, **overrides) -> OpenAIBackend:
        settings = load_settings(llm_backend="openai", llm_base_url=base_url, llm_model="smollm2", **overrides)
        made.append(OpenAIBackend(settings))
        made[-1].load()
        return made[-1]

    yield make
    for backend in made:
        backend.close()


def test_answers_through_a_real_openai_compatible_server(server, make_backend):
    backend = make_backend(server)
    [answer] = backend.generate([PASSWORD], max_new_tokens=12)
    assert "password" in answer.text
    assert answer.finish_reason == "length"
    assert answer.prompt_tokens > 0 and answer.completion_tokens == 12
    assert math.isfinite(answer.mean_logprob) and answer.mean_logprob < 0
    assert answer.mean_logprob != NEUTRAL_MEAN_LOGPROB  # the server's own log-probabilities


def test_batch_answers_come_back_in_order(server, make_backend):
    answers = make_backend(server).generate([PASSWORD, CAPITAL], max_new_tokens=12)
    assert len(answers) == 2
    assert "password" in answers[0].text and "password" not in answers[1].text


def test_without_logprobs_the_confidence_is_neutral(server, make_backend):
    [answer] = make_backend(server, llm_logprobs=False).generate([CAPITAL], max_new_tokens=8)
    assert answer.text and answer.mean_logprob == NEUTRAL_MEAN_LOGPROB


def test_server_down_fails_with_a_clear_error_after_bounded_retries(caplog, make_backend):
    caplog.set_level(logging.DEBUG)
    url = f"http://127.0.0.1:{free_port()}/v1"
    backend = make_backend(url, llm_max_retries=2, llm_api_key=SECRET)
    with pytest.raises(BackendUnavailable, match=r"failed after 3 tries: ConnectError") as failure:
        backend.generate([CAPITAL], max_new_tokens=8)  # transient: the job is retried later, not failed
    assert url in str(failure.value)
    assert caplog.text.count("retry") == 2
    assert SECRET not in caplog.text and SECRET not in str(failure.value)
    assert SECRET not in repr(backend.settings)


class DelayingProxy:
    """A TCP proxy to the real server that holds every connection `delay_s` before forwarding it."""

    def __init__(self, target_port: int, delay_s: float):
        self.target_port, self.delay_s, self.connections = target_port, delay_s, 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._forward, args=(client,), daemon=True).start()

    def _forward(self, client):
        time.sleep(self.delay_s)
        try:
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
        except OSError:
            client.close()
            return
        for src, dst in ((client, upstream), (upstream, client)):
            threading.Thread(target=_pipe, args=(src, dst), daemon=True).start()

    def close(self):
        self.listener.close()


def _pipe(src, dst):
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        dst.close()


def test_slow_server_the_deadline_holds(server, make_backend):
    server_port = int(server.split(":")[2].split("/")[0])
    fast = DelayingProxy(server_port, delay_s=0)
    slow = DelayingProxy(server_port, delay_s=60)
    try:
        [answer] = make_backend(f"http://127.0.0.1:{fast.port}/v1").generate([PASSWORD], max_new_tokens=8)
        assert "password" in answer.text  # the proxy itself forwards faithfully
        backend = make_backend(f"http://127.0.0.1:{slow.port}/v1", llm_timeout_s=1, llm_max_retries=1)
        started = time.monotonic()
        with pytest.raises(BackendError, match="failed after 2 tries: ReadTimeout"):
            backend.generate([CAPITAL], max_new_tokens=8)
        assert time.monotonic() - started < slow.delay_s  # gave up long before the server would have answered
        assert slow.connections == 3  # the probe at load, then two tries
    finally:
        fast.close()
        slow.close()


class Scripted(http.server.BaseHTTPRequestHandler):
    """Answers each POST with the next (status, headers) of `script`; records what it was sent."""

    script: list = []
    seen: list = []

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        Scripted.seen.append(dict(self.headers))
        status, headers = Scripted.script.pop(0)
        body = b'{"error": {"message": "scripted"}}'
        if status == 200:
            body = (b'{"choices": [{"message": {"content": "Hello."}, "finish_reason": "stop"}],'
                    b' "usage": {"prompt_tokens": 5, "completion_tokens": 2}}')
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def scripted():
    Scripted.script, Scripted.seen = [], []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Scripted)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()
    httpd.server_close()


def test_rate_limit_and_server_errors_are_retried_and_the_key_is_sent(scripted, make_backend):
    Scripted.script = [(429, {"Retry-After": "0"}), (503, {}), (200, {})]
    backend = make_backend(scripted, llm_max_retries=2, llm_api_key=SECRET)
    [answer] = backend.generate([CAPITAL], max_new_tokens=8)
    assert answer.text == "Hello." and answer.mean_logprob == NEUTRAL_MEAN_LOGPROB
    assert len(Scripted.seen) == 3
    assert all(h["Authorization"] == f"Bearer {SECRET}" for h in Scripted.seen)


def test_client_errors_are_not_retried(scripted, make_backend):
    Scripted.script = [(400, {}), (200, {})]
    backend = make_backend(scripted, llm_max_retries=3)
    with pytest.raises(BackendError, match="refused the request: HTTP 400"):
        backend.generate([CAPITAL], max_new_tokens=8)
    assert len(Scripted.seen) == 1


def test_retries_are_bounded(scripted, make_backend):
    Scripted.script = [(500, {"Retry-After": "0"})] * 3
    with pytest.raises(BackendUnavailable, match="failed after 2 tries: HTTP 500"):
        make_backend(scripted, llm_max_retries=1).generate([CAPITAL], max_new_tokens=8)
    assert len(Scripted.seen) == 2
