"""FAQ files (precache/faq.py): CSV, JSON and JSONL read into entries, every bad line reported, entries stored."""

import json

import pytest

from precache.config import load_settings
from precache.context import Context
from precache.faq import FaqEntry, FaqFileError, import_faq, read_faq
from precache.normalize import normalize, question_hash


@pytest.fixture
def faq_ctx(config):
    """A context on the test's database; no semantic tier (its index has tests of its own)."""
    ctx = Context(load_settings(**config, semantic_enabled=False))
    yield ctx
    ctx.close()


def test_each_file_type_gives_the_same_entries(tmp_path):
    rows = [{"question": " Where is the office? ", "answer": "Main Street 1."},
            {"question": "Do you ship abroad?", "answer": "", "reference": "Yes, to the EU."}]
    csv_file = tmp_path / "faq.csv"
    csv_file.write_text("question,answer,reference\n Where is the office? ,Main Street 1.,\n"
                        "Do you ship abroad?,,\"Yes, to the EU.\"\n", encoding="utf-8")
    (json_file := tmp_path / "faq.json").write_text(json.dumps(rows), encoding="utf-8")
    (jsonl_file := tmp_path / "faq.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n\n", encoding="utf-8")
    expected = [("Where is the office?", "Main Street 1.", None), ("Do you ship abroad?", None, "Yes, to the EU.")]
    for path in (csv_file, json_file, jsonl_file):
        entries = read_faq(path)
        assert [(e.question, e.answer, e.reference) for e in entries] == expected, path.name
    assert [e.line for e in read_faq(csv_file)] == [2, 3] and [e.line for e in read_faq(jsonl_file)] == [1, 2]


def test_every_bad_line_is_reported_and_nothing_is_read(tmp_path):
    path = tmp_path / "faq.jsonl"
    path.write_text('{"question": "ok?"}\n{"question": ""}\nnot json\n{"question": "q", "answer": 5}\n[1]\n',
                    encoding="utf-8")
    with pytest.raises(FaqFileError, match="4 bad entries; nothing imported") as raised:
        read_faq(path)
    problems = raised.value.problems
    assert [p.split(":")[0] for p in problems] == ["line 2", "line 3", "line 4", "line 5"]
    assert "'question' is missing or empty" in problems[0] and "'answer' must be text" in problems[2]


@pytest.mark.parametrize("name, text, problem", [
    ("faq.csv", "q,answer\nWhere?,Here.\n", "no 'question' column"),
    ("faq.json", '{"question": "Where?"}', "must hold a list"),
    ("faq.txt", "Where?", "unknown file type '.txt'"),
    ("faq.json", "[{", "cannot read the file"),
])
def test_a_file_that_is_not_an_faq_says_why(tmp_path, name, text, problem):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(FaqFileError, match="1 bad entry") as raised:
        read_faq(path)
    assert problem in raised.value.problems[0]


def test_imported_answers_are_curated_and_served_and_importing_again_adds_nothing(faq_ctx):
    entries = [FaqEntry(1, "Where is the office?", "Main Street 1."), FaqEntry(2, "Do you ship abroad?", None)]
    assert import_faq(faq_ctx, entries) == {"questions": 2, "curated_answers": 1}
    answer, _ = faq_ctx.store.lookup(question_hash(normalize("where is the office")))
    assert answer["answer"] == "Main Street 1." and answer["quality"] == 1.0
    assert faq_ctx.store.lookup(question_hash(normalize("Do you ship abroad?"))) is None
    assert import_faq(faq_ctx, entries) == {"questions": 2, "curated_answers": 0}  # the same answer is not stored twice
