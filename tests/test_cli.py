import json

import pytest
from sqlalchemy import func, select

from precache.cli import main, worker_argv
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


def test_gpu_worker_command_pins_the_device_and_runs_batches_on_one_pool_thread():
    argv, env = worker_argv("1", None, "info")
    assert env["CUDA_VISIBLE_DEVICES"] == "1"
    assert argv[argv.index("--hostname") + 1] == "gpu1@%h"
    assert argv[argv.index("--pool") + 1] == "threads" and argv[argv.index("--concurrency") + 1] == "1"
    assert argv[argv.index("--queues") + 1] == "quick,detailed,precompute"


def test_housekeeping_worker_uses_prefork_and_no_model():
    argv, env = worker_argv(None, "housekeeping", "info")
    assert argv[argv.index("--pool") + 1] == "prefork"
    assert argv[argv.index("--hostname") + 1] == "cpu@%h"


def test_unknown_queue_is_refused(runner):
    result = runner.invoke(main, ["worker", "--queues", "quick,fast"])
    assert result.exit_code == 2 and "unknown queue" in result.output


def test_bad_configuration_names_the_variable(runner, monkeypatch):
    monkeypatch.setenv("PRECACHE_WEB_PORT", "eighty")
    result = runner.invoke(main, ["db", "upgrade"])
    assert result.exit_code == 1 and "PRECACHE_WEB_PORT" in result.output


def test_stats_prints_sections(runner):
    result = runner.invoke(main, ["stats"])
    assert result.exit_code == 0
    assert "asks:" in result.output and "queues:" in result.output


def test_admin_review_approve_invalidate(runner, ctx):
    from tests.conftest import store_question

    qid, qhash = store_question(ctx, "Can I pay in instalments?")
    low = ctx.store.save_answer(qid, "pay pay pay", model="m", quality=0.1)
    listed = runner.invoke(main, ["admin", "review", "--json"])
    assert listed.exit_code == 0 and json.loads(listed.output.splitlines()[0])["answer_id"] == low["answer_id"]
    assert ctx.store.lookup(qhash) is None
    approved = runner.invoke(main, ["admin", "approve", str(low["answer_id"])])
    assert approved.exit_code == 0 and json.loads(approved.output)["review"] == "approved"
    assert ctx.store.lookup(qhash)[0]["answer_id"] == low["answer_id"]
    assert runner.invoke(main, ["admin", "invalidate", str(low["answer_id"])]).exit_code == 0
    assert ctx.store.lookup(qhash) is None
    missing = runner.invoke(main, ["admin", "pin", "987654"])
    assert missing.exit_code == 1 and "no answer 987654" in missing.output
    bad_tenant = runner.invoke(main, ["admin", "review", "--tenant", "bad tenant"])
    assert bad_tenant.exit_code == 2 and "--tenant" in bad_tenant.output


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the test's own database is not used
@pytest.mark.parametrize("command", [["stats"], ["precompute"], ["admin", "review"], ["ask", "hello"]])
def test_commands_on_a_database_not_migrated_say_to_upgrade(runner, monkeypatch, tmp_path, command):
    monkeypatch.setenv("PRECACHE_DATABASE_URL", f"sqlite:///{tmp_path / 'empty.db'}")
    result = runner.invoke(main, command)
    assert result.exit_code == 1
    assert "the database has no schema yet: run `precache db upgrade`" in result.output


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_faq_import_into_a_database_not_migrated_says_to_upgrade(runner, monkeypatch, tmp_path):
    monkeypatch.setenv("PRECACHE_DATABASE_URL", f"sqlite:///{tmp_path / 'empty.db'}")
    (tmp_path / "faq.csv").write_text("question,answer\nHow do I log in?,Use the login button.\n")
    result = runner.invoke(main, ["faq", "import", str(tmp_path / "faq.csv")])
    assert result.exit_code == 1 and "run `precache db upgrade`" in result.output
    assert runner.invoke(main, ["db", "upgrade"]).exit_code == 0
    assert runner.invoke(main, ["faq", "import", str(tmp_path / "faq.csv")]).exit_code == 0


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_database_not_reachable_is_named_without_its_password(runner, monkeypatch):
    monkeypatch.setenv("PRECACHE_DATABASE_URL", "postgresql+psycopg://postgres:secret@127.0.0.1:1/none")
    result = runner.invoke(main, ["stats"])
    assert result.exit_code == 1 and "cannot reach the database" in result.output and "secret" not in result.output


def test_admin_learned_lists_who_taught_a_phrasing_and_unlearn_stops_serving_it(runner, ctx):
    from precache.feedback import record
    from tests.conftest import store_question
    from web.ask import make_ask

    target_id, qhash = store_question(ctx, "How do I reset my password?")
    answer = ctx.store.save_answer(target_id, "Open Settings, then Security.", curated=True, quality=1.0)
    ask = make_ask("I am locked out of my account", 0)
    assert record(ctx, ask, None, answer, True, {answer["answer_id"]: 0.9}, "asker:dana")["learned"]
    assert ctx.store.lookup(ask.qhash)[0]["answer_id"] == answer["answer_id"]
    listed = runner.invoke(main, ["admin", "learned", "--json"])
    assert listed.exit_code == 0, listed.output
    row = json.loads(listed.output.splitlines()[0])
    assert (row["phrasing"], row["taught_by"], row["retracted_at"]) == ("I am locked out of my account", "asker:dana",
                                                                         None)
    done = runner.invoke(main, ["admin", "unlearn", str(row["id"])])
    assert done.exit_code == 0 and json.loads(done.output)["retracted_by"] == "admin (cli)"
    assert ctx.store.lookup(ask.qhash) is None
    assert "no learned phrasing" in runner.invoke(main, ["admin", "unlearn", "999"]).output
