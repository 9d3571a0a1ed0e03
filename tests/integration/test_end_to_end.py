"""The whole path with real parts: gunicorn, Redis, SQL, a Celery worker running SmolLM2."""

import json

import pytest
import requests

pytestmark = pytest.mark.integration


def test_miss_is_generated_then_served_instantly_from_redis_then_sql(stack):
    first = stack.ask("What is a firewall?")
    assert first.status_code == 202
    job = stack.wait_job(first.json()["job_id"])
    assert job["status"] == "ready" and job["source"] == "generated" and job["answer"].strip()
    again = stack.ask("  what is a FIREWALL ")
    assert again.status_code == 200
    assert again.json()["source"] == "exact"
    assert again.json()["answer"] == job["answer"]
    assert again.json()["matched_question"] == "What is a firewall?"
    stack.redis.flushdb()  # the hot cache is gone: SQL still answers, and refills Redis
    from_sql = stack.ask("What is a firewall?")
    assert from_sql.status_code == 200 and from_sql.json()["answer"] == job["answer"]
    assert stack.redis.keys("precache:answer:*")


def test_wait_ms_returns_the_generated_answer(stack):
    r = stack.ask("What does a router do?", wait_ms=60000)
    assert r.status_code == 200
    body = r.json()
    assert body["source"] == "generated" and body["answer"].strip() and body["answer_id"] > 0
    assert 0 < body["quality"] <= 1


def test_faq_import_with_answers_serves_every_question_exactly(stack, tmp_path):
    rows = [{"question": f"What is the price of plan number {i}?", "answer": f"Plan {i} costs {i} euros."}
            for i in range(25)]
    path = tmp_path / "faq.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    result = stack.cli("faq", "import", str(path))
    assert result.returncode == 0, result.stderr
    for row in rows:
        body = stack.ask(row["question"].upper()).json()
        assert (body["source"], body["answer"]) == ("exact", row["answer"])


def test_faq_without_answers_is_precomputed_then_served(stack, tmp_path):
    questions = [f"What is the capital of country {c}?" for c in "ABCDE"]
    path = tmp_path / "faq.csv"
    path.write_text("question\n" + "\n".join(questions) + "\n")
    assert stack.cli("faq", "import", str(path)).returncode == 0
    result = stack.cli("precompute", "--wait")
    assert result.returncode == 0, result.stderr
    assert "queued 5 questions" in result.stdout and "5 answered" in result.stdout
    for question in questions:
        assert stack.ask(question).json()["source"] == "exact"


def test_cli_ask_and_stats_read_the_same_system(stack):
    result = stack.cli("ask", "hello")
    assert result.returncode == 0 and result.stdout.startswith("[template]")
    stats = stack.cli("stats")
    assert stats.returncode == 0 and "exact" in stats.stdout and "template" in stats.stdout


def test_readyz_of_the_running_stack(stack):
    r = requests.get(f"{stack.base_url}/readyz", timeout=5)
    assert r.status_code == 200 and r.json()["status"] == "ready"


def test_new_questions_still_flow_after_redis_is_flushed(stack):
    import redis as redis_lib

    from tests.conftest import BROKER_URL

    stack.redis.flushdb()
    redis_lib.Redis.from_url(BROKER_URL).flushdb()  # queues, bindings and all
    r = stack.ask("What is a VPN used for?", wait_ms=60000)
    assert r.status_code == 200 and r.json()["source"] == "generated"
