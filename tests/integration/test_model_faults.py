"""A model that hangs, errors, answers nothing or kills its worker, run by a real worker
(tests/integration/fault_backend.py); a message the broker lost with its worker; a pickled message."""

import contextlib
import json
import os
import signal
import time

import pytest
import redis as redis_lib
import requests
from celery import Celery

from precache.queueing import QUICK
from tests.conftest import migrated_database
from tests.integration.conftest import free_port, start, stop, wait_for
from tests.integration.fault_backend import calls
from tests.integration.services import PrivateRedis
from tests.integration.test_faults import REDIS_SECRET, running_stack, wait_until

pytestmark = pytest.mark.integration
TIMEOUT_S, RETRIES = 3, 2


def fault_stack(tmp_path_factory, name: str):
    tmp = tmp_path_factory.mktemp(name)
    server = PrivateRedis(tmp, REDIS_SECRET)
    server.start()
    backend_log = tmp / "backend-calls.txt"
    backend_log.touch()
    try:
        with contextlib.contextmanager(migrated_database)("sqlite", tmp) as url, \
                running_stack(tmp, url, server, llm_backend="tests.integration.fault_backend:FaultBackend",
                              generation_timeout_s=TIMEOUT_S, generation_max_retries=RETRIES,
                              generation_retry_backoff_s=0.2, env_extra={"FAULT_BACKEND_LOG": str(backend_log)}) as s:
            s.backend_log = backend_log
            yield s
    finally:
        server.stop()


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    yield from fault_stack(tmp_path_factory, "model-faults")


@pytest.fixture(scope="module")
def swept_stack(tmp_path_factory):
    """A stack of its own for the tests that run the sweep: in `stack`, the sweep would queue the failed
    questions of the other tests again (a hanging one among them) into the batches these tests watch."""
    yield from fault_stack(tmp_path_factory, "model-faults-swept")


def stored_answers(stack, question: str) -> int:
    return stack.quick_answers().get(question, 0)


def test_a_hanging_model_fails_its_job_in_time_and_the_worker_goes_on(stack):
    started = time.monotonic()
    r = stack.ask("Will this hang forever?", wait_ms=1000)
    waited = time.monotonic() - started
    assert r.status_code == 202 and r.json()["source"] == "fallback"
    assert waited < 5  # the fallback comes at the deadline, not when the model gives up; precision is in bench/
    job = stack.wait_job(r.json()["job_id"], timeout=60)
    assert job["status"] == "failed" and "PRECACHE_GENERATION_TIMEOUT_S" in job["error"]
    assert stored_answers(stack, "Will this hang forever?") == 0
    after = stack.ask("Is the worker still answering?", wait_ms=30000)
    assert after.status_code == 200 and after.json()["source"] == "generated"
    assert stack.backend_log.read_text().splitlines().count("load") == 2  # a fresh model after the stuck one


def test_an_empty_answer_is_never_cached(stack):
    question = "Give me an empty answer?"
    job = stack.wait_job(stack.ask(question).json()["job_id"], timeout=60)
    assert job["status"] == "failed" and "empty" in job["error"]
    assert stored_answers(stack, question) == 0
    again = stack.ask(question)
    assert again.status_code == 202 and again.json()["source"] == "fallback"  # not served from a cache


def test_a_model_error_fails_at_once_without_retry(stack):
    question = "Is this input broken?"
    job = stack.wait_job(stack.ask(question).json()["job_id"], timeout=60)
    assert job["status"] == "failed" and "failed on this input" in job["error"]
    assert stack.ask("Anything after the error?", wait_ms=30000).status_code == 200  # the queue moved on
    assert calls(stack.backend_log, question) == 1


def test_a_transient_error_is_retried_until_it_passes(stack):
    question = "Is the model flaky today?"
    r = stack.ask(question, wait_ms=30000)
    job = stack.wait_job(r.json()["job_id"], timeout=60)
    assert job["status"] == "ready" and job["answer"] == f"An answer to: {question}"
    assert stored_answers(stack, question) == 1


def test_retries_of_a_transient_error_are_bounded(stack):
    question = "Is the model down for good?"
    job = stack.wait_job(stack.ask(question).json()["job_id"], timeout=60)
    assert job["status"] == "failed" and f"gave up after {RETRIES} retries" in job["error"]
    assert stack.ask("Anything after the retries?", wait_ms=30000).status_code == 200
    assert calls(stack.backend_log, question) == 1 + RETRIES
    assert stored_answers(stack, question) == 0


class Exploit:
    """Unpickling this runs a shell command: what a pickle-accepting worker would do."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_a_pickled_message_is_refused_by_the_worker(stack, tmp_path):
    marker = tmp_path / "pickle-ran"
    sender = Celery(broker=stack.env["PRECACHE_BROKER_URL"])
    sender.send_task("worker.tasks.sweep_lost_asks", args=[Exploit(marker)], serializer="pickle",
                     queue="housekeeping")
    log = stack.logs / "worker-1.log"
    deadline = time.monotonic() + 30
    while "Refusing to deserialize untrusted content of type pickle" not in log.read_text():
        assert time.monotonic() < deadline, log.read_text()[-2000:]
        time.sleep(0.2)
    assert not marker.exists()
    assert stack.ask("Still fine after the pickle?", wait_ms=30000).status_code == 200
    sender.close()


def test_a_question_that_crashes_the_worker_is_given_up_and_nothing_else_is_lost(swept_stack):
    stack = swept_stack
    fatal, other = "Will this question crash the model?", "Is a question asked beside that one answered?"
    responses = [stack.ask(fatal), stack.ask(other)]
    assert [r.status_code for r in responses] == [202, 202]
    for crash in (1, 2):  # the model kills the worker; a supervisor starts it again, the broker redelivers
        worker = stack.procs["worker"]
        wait_until(lambda: worker.poll() is not None, 120, f"the worker to die (crash {crash})")
        assert worker.returncode == -signal.SIGSEGV
        stack.procs.pop("worker")
        stack.start_worker()
    job = stack.wait_job(responses[0].json()["job_id"], timeout=120)
    assert job["status"] == "failed" and "died during 2 generations" in job["error"]
    assert calls(stack.backend_log, fatal) == 2
    # Asked while the worker was generating, the other question's message may have been read from Redis
    # but not yet recorded by the worker when it died: then only the sweep sends it again.
    stack.sweep()  # as beat would; no beat runs here: it would queue the questions these tests fail again
    assert stack.wait_job(responses[1].json()["job_id"], timeout=120)["status"] == "ready"
    assert stored_answers(stack, other) == 1
    # Asked again, it gets the fallback at once and the model is not run on it again.
    again = stack.ask(fatal, wait_ms=10000)
    assert again.status_code == 202 and again.json()["source"] == "fallback"
    assert stack.wait_job(again.json()["job_id"], timeout=60)["status"] == "failed"
    assert calls(stack.backend_log, fatal) == 2 and stack.procs["worker"].poll() is None


def test_a_message_lost_with_its_worker_is_sent_again_by_the_sweep(swept_stack):
    stack = swept_stack
    question = "Is a message that a dying worker took answered?"
    stack.kill_worker()
    r = stack.ask(question)
    assert r.status_code == 202
    job_id = r.json()["job_id"]
    # What a worker's BRPOP does just before the worker dies: the message leaves Redis, unrecorded.
    broker = redis_lib.Redis.from_url(stack.env["PRECACHE_BROKER_URL"])
    taken = json.loads(broker.rpop(QUICK))
    broker.close()
    assert taken["headers"]["id"] == job_id
    stack.start_worker()
    time.sleep(TIMEOUT_S + 1)  # older than GENERATION_TIMEOUT_S: no worker can still be about to read it
    assert requests.get(f"{stack.base_url}/v1/jobs/{job_id}", timeout=10).json()["status"] == "pending"
    assert calls(stack.backend_log, question) == 0  # the broker never gave it back
    stack.sweep()  # as beat would; no beat runs here: it would queue the questions these tests fail again
    job = stack.wait_job(job_id, timeout=60)
    assert job["status"] == "ready" and job["answer"] == f"An answer to: {question}"
    assert stored_answers(stack, question) == 1  # generated once (its detailed answer follows, queued then)
    log = stack.logs / f"worker-{stack.worker_starts}.log"
    assert f"job {job_id} was pending with no message in the broker" in log.read_text()


@pytest.fixture(scope="module")
def busy_stack(tmp_path_factory):
    """A stack of its own: its worker spends a minute in one slow generation."""
    yield from fault_stack(tmp_path_factory, "model-faults-busy")


def test_a_worker_in_a_long_generation_stays_online_in_flower_and_answers_ping(busy_stack, tmp_path):
    port = free_port()
    log = tmp_path / "flower.log"
    flower = start(["flower", "--port", str(port)], busy_stack.env, log)
    api = f"http://127.0.0.1:{port}/api"
    control = Celery(broker=busy_stack.env["PRECACHE_BROKER_URL"])
    try:
        wait_for(lambda: requests.get(f"{api}/workers?refresh=1", timeout=30).json(), flower, log)
        job_id = busy_stack.ask("Is this a slow question?").json()["job_id"]
        wait_for(lambda: "call Is this a slow question?" in busy_stack.backend_log.read_text(), flower, log)
        # Inside the model now (stopped at each time limit and given more time: about a minute in all).
        replies = control.control.ping(timeout=10)
        assert any(name.startswith("cpu@") and reply == {"ok": "pong"} for r in replies for name, reply in r.items())
        workers = requests.get(f"{api}/workers?refresh=1", timeout=60).json()
        [(name, info)] = [(n, i) for n, i in workers.items() if n.startswith("cpu@")]
        assert info.get("stats") and info.get("registered"), info  # it answered Flower's inspect calls
        assert busy_stack.ask(f"What is the state of job {job_id}?").status_code in (200, 202)  # the web goes on
        assert requests.get(f"{busy_stack.base_url}/v1/jobs/{job_id}", timeout=10).json()["status"] == "pending"
    finally:
        control.close()
        stop(flower)
