"""The quality gate with a real worker: a bad stored answer is never served; it is regenerated and the
good answer served. Scheduled jobs: two beats at once do not double the work; Flower shows the jobs."""

import time

import pytest
import requests
from sqlalchemy import create_engine, func, select

from precache.models import Answer, FaqQuestion
from precache.normalize import normalize, question_hash
from tests.integration.conftest import free_port, running_stack, start, stop, wait_for

pytestmark = pytest.mark.integration
KEY = "gate-test-key"


@pytest.fixture(scope="module")
def gated(tmp_path_factory):
    with running_stack("sqlite", tmp_path_factory.mktemp("gate"), api_key=KEY, llm_max_tokens_quick=48,
                       llm_max_tokens_detailed=64, quality_threshold=0.5) as running:
        yield running


def _sql(stack, query):
    engine = create_engine(stack.env["PRECACHE_DATABASE_URL"])
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    engine.dispose()
    return rows


def _store_bad_answer(stack, text: str) -> int:
    from precache.config import load_settings
    from precache.context import Context

    ctx = Context(load_settings(database_url=stack.env["PRECACHE_DATABASE_URL"],
                                redis_url=stack.env["PRECACHE_REDIS_URL"]))
    n = normalize(text)
    qid = ctx.store.ensure_question(text, n, question_hash(n))
    bad = ctx.store.save_answer(qid, "France France France France France France.", model="smollm2", quality=0.05,
                                quality_components={"repetition": 0.1})
    ctx.close()
    return bad["answer_id"]


def test_bad_answer_is_never_served_and_is_regenerated(gated):
    bad_id = _store_bad_answer(gated, "What is the capital of France?")
    first = gated.ask("What is the capital of France?", wait_ms=60000).json()
    assert "answer_id" in first, (first, (gated.logs / "worker.log").read_text()[-3000:])
    assert first["answer_id"] != bad_id and "France France" not in first["answer"]
    assert first["status"] == "ready" and first["source"] == "generated", first
    assert first["quality"] >= 0.5 and "Paris" in first["answer"]
    again = gated.ask("what is the capital of france").json()
    assert again["source"] == "exact" and again["answer_id"] == first["answer_id"]
    kept = _sql(gated, select(Answer.id, Answer.quality).where(Answer.id == bad_id))
    assert kept == [(bad_id, 0.05)]  # kept for review, not deleted
    review = requests.get(f"{gated.base_url}/v1/admin/review", headers={"X-API-Key": KEY}, timeout=10).json()
    assert bad_id in [a["answer_id"] for a in review["answers"]]


def test_two_beats_at_once_do_not_double_the_work_and_flower_shows_the_jobs(gated, tmp_path):
    faq = tmp_path / "faq.jsonl"
    faq.write_text('{"question": "What is the boiling point of water?"}\n{"question": "What colour is the sky?"}\n')
    assert gated.cli("faq", "import", str(faq)).returncode == 0
    env = gated.env | {"PRECACHE_PRECOMPUTE_INTERVAL_S": "10", "PRECACHE_VAR_DIR": str(tmp_path / "beat-a")}
    flower_port = free_port()
    beats = [start(["beat"], env, tmp_path / "beat-a.log"),
             start(["beat"], env | {"PRECACHE_VAR_DIR": str(tmp_path / "beat-b")}, tmp_path / "beat-b.log")]
    flower = start(["flower", "--port", str(flower_port)], gated.env, tmp_path / "flower.log")
    try:
        questions = select(FaqQuestion.question_id)
        answered = select(func.count(func.distinct(Answer.question_id))).where(Answer.question_id.in_(questions),
                                                                            Answer.level == "quick")
        wait_for(lambda: _sql(gated, answered)[0][0] == 2, beats[0], tmp_path / "beat-a.log", timeout=300)
        time.sleep(12)  # both beats fire again: nothing left to do
        per_question = _sql(gated, select(Answer.question_id, func.count()).where(
            Answer.question_id.in_(questions), Answer.level == "quick").group_by(Answer.question_id))
        assert sorted(count for _, count in per_question) == [1, 1]  # each answered once
        tasks = {}

        def precompute_seen():
            tasks.update(requests.get(f"http://127.0.0.1:{flower_port}/api/tasks", timeout=10).json())
            return any(t.get("name") == "worker.tasks.precompute_faq_answers" and t.get("result")
                       for t in tasks.values())

        wait_for(precompute_seen, flower, tmp_path / "flower.log", timeout=120)
        results = [t["result"] for t in tasks.values() if t.get("name") == "worker.tasks.precompute_faq_answers"]
        assert any("queued" in str(r) for r in results)
    finally:
        for proc in (*beats, flower):
            stop(proc)
