"""`precache calibrate` on slices of the real labelled data prints a curve and a threshold."""

from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.calibrate import Outcome, lowest_threshold, rates, tasks_of
from cli import main
from cli.datasets import question_texts

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"  # the repository is tests/cli/ up two
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason="../shared/data is not here")


def test_lowest_threshold_meets_the_target():
    outcomes = [Outcome(1.3, 0.95, True, True), Outcome(1.2, 0.9, False, True), Outcome(1.1, 0.9, True, True),
                Outcome(0.9, 0.8, False, False)] + [Outcome(-1, -1, False, True)] * 96
    assert lowest_threshold(outcomes, 0.01, 0.75) == 1.1  # one wrong hit in 100 asks
    assert lowest_threshold(outcomes, 0.0, 0.75) == 1.3
    assert rates(outcomes, 1.1, 0.75) == (2 / 99, 1 / 100)


@needs_data
def test_an_faq_is_also_scored_with_a_quarter_of_its_entries_unanswered():
    path = DATA / "stackfaq" / "stackExchange-FAQ.json"
    outside = ["What is the capital of Mongolia?", *question_texts(path)[:5]]
    full, part = tasks_of(path, outside, unanswered=0.25)
    assert len(full.cache) == 125 and len(part.cache) == 125 - 31
    cached = {k for _, k in part.cache}
    dropped = [t for t, k in full.askers if k is not None and k not in cached]
    asks = dict(part.askers)
    assert dropped and all(asks[t] is None for t in dropped)  # their paraphrases ask as out of scope
    assert all(k in cached for _, k in part.askers if k is not None)
    # Outside questions that the FAQ itself holds are not counted as out of scope.
    assert [t for t, k in full.askers if k is None] == ["What is the capital of Mongolia?"]
    mock = tasks_of(DATA / "gptcache" / "mock_data.json", outside, unanswered=0.25)
    assert len(mock) == 1 and all(k is not None for _, k in mock[0].askers)


@needs_data
@pytest.mark.model
def test_calibrate_prints_a_curve_and_a_threshold(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    args = ["calibrate", str(DATA / "banking77" / "train.csv"), "--askers", str(DATA / "banking77" / "test.csv"),
            "--per-intent", "2", "--limit", "80", "--oos", str(DATA / "stackfaq" / "stackExchange-FAQ.json"),
            "--oos-limit", "20"]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "guards on" in result.output and "guards off" in result.output
    assert "100 asks (20 out of scope)" in result.output
    assert "threshold for <= 0.50% wrong hits on every file" in result.output
    assert len([line for line in result.output.splitlines() if line.strip().startswith(("0.", "1."))]) >= 17


def test_a_paraphrase_group_file_caches_half_its_groups_and_asks_the_rest(tmp_path):
    import json

    path = tmp_path / "groups.jsonl"
    rows = [{"group": f"g{i}", "topic": 0, "formal": [f"질문 {i} 형식 {j}" for j in range(2)],
             "informal": [f"질문 {i} 반말 {j}" for j in range(2)]} for i in range(4)]
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
    [task] = tasks_of(path, outside=[])
    cached = dict(task.cache)
    assert len(cached) == 2 and all(text.endswith("형식 0") for text in cached)  # each group's first phrasing
    in_scope = [key for _, key in task.askers if key is not None]
    assert len(in_scope) == 2 * 3 and set(in_scope) == set(cached.values())  # its other 3 phrasings ask for it
    assert sum(key is None for _, key in task.askers) == 2 * 4  # every phrasing of the other groups: out of scope
