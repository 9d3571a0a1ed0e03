"""What an operator sees: Flower, /metrics, /v1/stats and logs, against a running stack."""

import re
import time

import pytest
import requests
from sqlalchemy import create_engine, func, select

from precache.models import AskLog
from tests.integration.conftest import free_port, start, stop, wait_for

pytestmark = pytest.mark.integration


def test_request_id_follows_a_miss_into_the_worker_log(stack):
    r = requests.post(f"{stack.base_url}/v1/ask", json={"question": "What is a CDN?"},
                      headers={"X-Request-ID": "trace-cdn-42"}, timeout=10)
    assert r.headers["X-Request-ID"] == "trace-cdn-42"
    stack.wait_job(r.json()["job_id"])
    worker_log = (stack.logs / "worker.log").read_text()
    assert re.search(r"\[trace-cdn-42\] .*generated answer", worker_log), worker_log[-2000:]


def test_flower_shows_the_worker_and_the_generation_task(stack, tmp_path):
    port = free_port()
    log = tmp_path / "flower.log"
    flower = start(["flower", "--port", str(port)], stack.env, log)
    api = f"http://127.0.0.1:{port}/api"
    try:
        wait_for(lambda: requests.get(f"{api}/workers?refresh=1", timeout=10).json(), flower, log)
        assert any(name.startswith("cpu@") for name in requests.get(f"{api}/workers", timeout=10).json())
        job_id = stack.ask("What does Flower show?").json()["job_id"]
        stack.wait_job(job_id)

        def task_seen():
            task = requests.get(f"{api}/task/info/{job_id}", timeout=10).json()
            return task.get("state") == "SUCCESS" and task

        wait_for(task_seen, flower, log, timeout=30)
        task = task_seen()
        assert task["name"] == "worker.tasks.generate_quick_answer"
        assert task["runtime"] > 0 and task["worker"].startswith("cpu@")
    finally:
        stop(flower)


def _metric_counts(text: str) -> dict[str, int]:
    return {m[0]: int(float(m[1])) for m in re.findall(r'^precache_asks_total\{source="(\w+)"\} (\S+)$', text, re.M)}


def test_metrics_stats_and_ask_log_agree(stack):
    for question in ["hello", "thanks", "What is observability?", "what is observability", "hello"]:
        stack.ask(question)
    time.sleep(0.5)
    metrics = _metric_counts(requests.get(f"{stack.base_url}/metrics", timeout=10).text)
    stats = requests.get(f"{stack.base_url}/v1/stats", timeout=10).json()
    engine = create_engine(stack.env["PRECACHE_DATABASE_URL"])
    with engine.connect() as conn:
        logged = dict(conn.execute(select(AskLog.source, func.count()).group_by(AskLog.source)).all())
    engine.dispose()
    assert {k: v for k, v in metrics.items() if v} == logged
    assert {k: v["count"] for k, v in stats["sources"].items() if v["count"]} == logged
    assert stats["asks"] == sum(logged.values())
