"""The `precache score` command: the worker's own scoring code over a JSONL file."""

import json

from cli import main
from precache.config import load_settings
from precache.semantic.embedders import embedder_for
from tests.worker.test_quality import GOOD, QUESTION
from worker.quality import Scorer


def test_score_command_writes_quality_and_components(runner, tmp_path):
    path = tmp_path / "answers.jsonl"
    path.write_text(
        json.dumps({"question": QUESTION, "answer": GOOD, "id": 1}) + "\n"
        + json.dumps({"question": QUESTION, "answer": "", "reference": GOOD}) + "\n"
    )
    out = tmp_path / "scored.jsonl"
    result = runner.invoke(main, ["score", str(path), "-o", str(out)])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r.get("id") for r in rows] == [1, None]  # input fields are kept, in order
    assert rows[0]["quality"] > 0.5 and rows[1]["quality"] == 0.0
    assert rows[1]["components"]["empty"] == 0.0
    direct = Scorer(embedder_for(load_settings(), threads=None)).score(QUESTION, GOOD)
    assert rows[0]["quality"] == direct.quality  # the same code path as the worker


def test_score_command_reports_every_bad_line_and_writes_nothing(runner, tmp_path):
    path = tmp_path / "answers.jsonl"
    path.write_text('{"question": "Q?", "answer": "A."}\n{"question": "Q?"}\nnot json\n'
                    '{"question": "Q?", "answer": "A.", "mean_logprob": 0.5}\n')
    out = tmp_path / "scored.jsonl"
    result = runner.invoke(main, ["score", str(path), "-o", str(out)])
    assert result.exit_code == 1
    for expected in ("line 2: 'answer' is missing", "line 3: not valid JSON", "line 4: 'mean_logprob'",
                     "3 bad entries; nothing scored"):
        assert expected in result.output
    assert not out.exists() or out.read_text() == ""
