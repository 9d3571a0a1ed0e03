import json

import pytest
from sqlalchemy import func, select

from cli import main
from precache.models import Answer, Question


def _count(ctx, model):
    with ctx.sessions() as session:
        return session.scalar(select(func.count()).select_from(model))


def test_db_upgrade_is_repeatable(runner):
    result = runner.invoke(main, ["db", "upgrade"])
    assert result.exit_code == 0 and "up to date" in result.output


@pytest.mark.parametrize("name, content", [
    ("faq.csv", "question,answer\nWhat is A?,A is a letter.\nWhat is B?,\n"),
    ("faq.json", json.dumps([{"question": "What is A?", "answer": "A is a letter."}, {"question": "What is B?"}])),
    ("faq.jsonl", '{"question": "What is A?", "answer": "A is a letter."}\n{"question": "What is B?"}\n'),
])
def test_faq_import_formats(runner, ctx, tmp_path, name, content):
    path = tmp_path / name
    path.write_text(content)
    result = runner.invoke(main, ["faq", "import", str(path)])
    assert result.exit_code == 0, result.output
    assert "imported 2 questions, 1 curated answers" in result.output
    assert _count(ctx, Question) == 2 and _count(ctx, Answer) == 1
    again = runner.invoke(main, ["faq", "import", str(path)])  # idempotent
    assert "0 curated answers" in again.output and _count(ctx, Answer) == 1


def test_broken_lines_are_reported_and_nothing_is_imported(runner, ctx, tmp_path):
    path = tmp_path / "faq.jsonl"
    path.write_text('{"question": "Fine?"}\n{"question": ""}\nnot json\n{"answer": "orphan"}\n')
    result = runner.invoke(main, ["faq", "import", str(path)])
    assert result.exit_code == 1
    for line in (2, 3, 4):
        assert f"line {line}:" in result.output
    assert "nothing imported" in result.output
    assert _count(ctx, Question) == 0


def test_unknown_file_type_is_refused(runner, tmp_path):
    path = tmp_path / "faq.xml"
    path.write_text("<faq/>")
    result = runner.invoke(main, ["faq", "import", str(path)])
    assert result.exit_code == 1 and ".csv, .json or .jsonl" in result.output


def test_stats_prints_sections(runner):
    result = runner.invoke(main, ["stats"])
    assert result.exit_code == 0
    assert "asks:" in result.output and "queues:" in result.output


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_faq_import_into_a_database_not_migrated_says_to_upgrade(runner, monkeypatch, tmp_path):
    monkeypatch.setenv("PRECACHE_DATABASE_URL", f"sqlite:///{tmp_path / 'empty.db'}")
    (tmp_path / "faq.csv").write_text("question,answer\nHow do I log in?,Use the login button.\n")
    result = runner.invoke(main, ["faq", "import", str(tmp_path / "faq.csv")])
    assert result.exit_code == 1 and "run `precache db upgrade`" in result.output
    assert runner.invoke(main, ["db", "upgrade"]).exit_code == 0
    assert runner.invoke(main, ["faq", "import", str(tmp_path / "faq.csv")]).exit_code == 0


def test_ask_answers_through_the_ladder_without_building_the_web_app(runner, ctx, monkeypatch):
    import web

    def no_app(*args, **kwargs):
        raise AssertionError("precache ask built the Flask app")

    monkeypatch.setattr(web, "create_app", no_app)
    assert runner.invoke(main, ["ask", "hello"]).output.startswith("[template] ")
    from tests.conftest import store_question

    question_id, _ = store_question(ctx, "What is the warranty period?")
    ctx.store.save_answer(question_id, "Two years.", curated=True, quality=1.0)
    result = runner.invoke(main, ["ask", "what is the WARRANTY period", "--json"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert (body["source"], body["answer"], body["matched_question"]) == ("exact", "Two years.",
                                                                           "What is the warranty period?")


@pytest.mark.parametrize("args, message", [(["?!"], "at least one letter or digit"),
                                           (["hello", "--wait-ms", "-1"], "wait_ms: must be 0 or more")])
def test_ask_refuses_a_bad_question_or_wait_saying_what_to_fix(runner, args, message):
    result = runner.invoke(main, ["ask", *args])
    assert result.exit_code == 1 and message in result.output


def test_db_upgrade_drops_the_hot_cache_when_the_schema_changed(runner, ctx, config):
    from alembic import command

    from precache.db import alembic_config

    command.downgrade(alembic_config(config["database_url"]), "0006")  # before the keys changed (0007)
    ctx.redis.set("precache:answer:ns:old-key", "{}")
    result = runner.invoke(main, ["db", "upgrade"])
    assert result.exit_code == 0 and "1 hot-cache entries dropped" in result.output, result.output
    assert ctx.redis.get("precache:answer:ns:old-key") is None
    ctx.redis.set("precache:answer:ns:new-key", "{}")
    again = runner.invoke(main, ["db", "upgrade"])  # nothing to migrate: the hot cache stays
    assert again.exit_code == 0 and "dropped" not in again.output
    assert ctx.redis.get("precache:answer:ns:new-key") == b"{}"


@pytest.mark.model
def test_reembed_embeds_what_another_embedder_indexed(runner, ctx):
    from precache.db import session_scope
    from precache.models import QuestionEmbedding
    from precache.semantic.reembed import pending
    from tests.precache.semantic.test_index import _store_answered

    ids = [_store_answered(ctx, q, "답변입니다.") for q in ("배송은 얼마나 걸리나요?", "환불은 어떻게 받나요?")]
    with session_scope(ctx.sessions) as session:
        session.add_all(QuestionEmbedding(question_id=i, model="old-model", dim=2, vector=b"\0" * 8) for i in ids)
    result = runner.invoke(main, ["reembed"])
    assert result.exit_code == 0, result.output
    assert "2 questions and 0 feedback vectors embedded again" in result.output
    assert pending(ctx) == ([], 0)
