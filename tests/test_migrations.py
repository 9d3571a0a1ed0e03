"""Migrations: one head, the tables they build, down to base and up again."""

from datetime import datetime, timedelta, timezone

from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import JSON, LargeBinary, column, create_engine, inspect, select, table

from precache.db import alembic_config
from precache.normalize import question_hash


def test_single_head():
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    assert len(script.get_heads()) == 1


def test_upgrade_creates_the_tables(database_url):
    engine = create_engine(database_url)
    assert {"questions", "answers", "ask_log", "alembic_version"} <= set(inspect(engine).get_table_names())
    engine.dispose()


def test_downgrade_to_base_and_back(database_url):
    cfg = alembic_config(database_url)
    command.downgrade(cfg, "base")
    command.upgrade(cfg, "head")


def test_0007_rekeys_questions_feedback_and_asks_by_the_new_rule(database_url):
    # (text, the old rule's normalised text, age): C# had C's key; x² had x2's while x^² had x^2's, which is
    # x²'s new one; the two passwords differ only in a zero-width space, the older one keeps the key.
    stored = [("Do you support C#?", "do you support c", 4), ("x²", "x2", 3), ("x^²", "x^2", 2),
              ("pass\u200bword reset", "pass\u200bword reset", 1), ("Password reset?", "password reset", 0)]
    cfg = alembic_config(database_url)
    command.downgrade(cfg, "0006")
    engine = create_engine(database_url)
    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    questions = table("questions", column("id"), column("qhash"), column("text"), column("normalized"),
                      column("is_faq"), column("created_at"), column("canonical_id"))
    asked = {"ask_log": table("ask_log", *map(column, ["asked_at", "question", "qhash", "namespace", "source",
                                                       "latency_ms"])),
             "feedback": table("feedback", *map(column, ["created_at", "tenant", "question", "qhash", "helpful",
                                                         "asker", "model"]),
                               column("offered", JSON), column("vector", LargeBinary))}
    with engine.begin() as conn:
        for i, (text, old, days) in enumerate(stored, 1):
            conn.execute(questions.insert().values(id=i, qhash=question_hash(old), text=text, normalized=old,
                                                   is_faq=False, created_at=t0 - timedelta(days=days)))
        conn.execute(asked["ask_log"].insert().values(asked_at=t0, question="Do you support C#?", namespace="ns",
                                                      qhash=question_hash("do you support c"), source="fallback",
                                                      latency_ms=1.0))
        conn.execute(asked["feedback"].insert().values(created_at=t0, tenant="", question="x != y?", helpful=False,
                                                       qhash=question_hash("x = y"), offered={}, asker="a", model="m",
                                                       vector=b""))
    command.upgrade(cfg, "head")
    with engine.connect() as conn:
        rows = {r.id: r for r in conn.execute(select(questions).order_by(questions.c.id))}
        logged = conn.execute(select(asked["ask_log"].c.qhash)).scalar_one()
        felt = conn.execute(select(asked["feedback"].c.qhash)).scalar_one()
    engine.dispose()
    assert [rows[i].normalized for i in (1, 2, 3, 4)] == ["do you support c#", "x^2", "x^^2", "password reset"]
    assert all(rows[i].qhash == question_hash(rows[i].normalized) for i in (1, 2, 3, 4))
    assert [rows[i].canonical_id for i in (1, 2, 3, 4)] == [None] * 4
    loser = rows[5]  # the younger "password reset": linked to the oldest, under a hash that no question has
    assert loser.canonical_id == 4 and loser.normalized == "password reset"
    assert len(loser.qhash) == 64 and loser.qhash not in {r.qhash for r in rows.values() if r is not loser}
    assert logged == question_hash("do you support c#") and felt == question_hash("x != y")


def test_0009_adds_who_asked_and_the_predictions_per_tenant_and_goes_back(database_url):
    cfg = alembic_config(database_url)
    engine = create_engine(database_url)
    assert "asker" in {c["name"] for c in inspect(engine).get_columns("ask_log")}
    assert {"tenant", "question_id", "canonical_id"} <= {c["name"] for c in inspect(engine).get_columns(
        "predicted_questions")}
    command.downgrade(cfg, "0008")
    assert "asker" not in {c["name"] for c in inspect(engine).get_columns("ask_log")}
    assert "predicted_questions" not in inspect(engine).get_table_names()
    command.upgrade(cfg, "head")
    engine.dispose()


def test_0011_keeps_each_faq_question_for_the_tenant_whose_curated_answer_it_has(database_url):
    cfg = alembic_config(database_url)
    command.downgrade(cfg, "0010")
    engine = create_engine(database_url)
    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    questions = table("questions", *map(column, ["id", "qhash", "text", "normalized", "is_faq", "reference",
                                                 "created_at"]))
    answers = table("answers", *map(column, ["id", "question_id", "namespace", "level", "text", "curated", "tenant",
                                             "pinned", "created_at"]), column("quality_components", JSON))
    with engine.begin() as conn:
        for i, (text, is_faq, reference) in enumerate([("Acme's own question?", True, "Acme says so."),
                                                      ("Unanswered FAQ question?", True, None),
                                                      ("Only asked?", False, None)], 1):
            conn.execute(questions.insert().values(id=i, qhash=question_hash(text.lower()), text=text,
                                                   normalized=text.lower(), is_faq=is_faq, reference=reference,
                                                   created_at=t0))
        conn.execute(answers.insert().values(id=1, question_id=1, namespace="ns", level="quick", text="Yes.",
                                             curated=True, tenant="acme", pinned=False, created_at=t0,
                                             quality_components={}))
    command.upgrade(cfg, "head")
    faq = table("faq_questions", *map(column, ["tenant", "question_id", "reference"]))
    with engine.connect() as conn:
        rows = sorted(tuple(r) for r in conn.execute(select(faq.c.tenant, faq.c.question_id, faq.c.reference)))
    engine.dispose()
    assert rows == [("", 2, None), ("acme", 1, "Acme says so.")]


def test_0012_gives_korean_spacing_variants_one_key(database_url):
    cfg = alembic_config(database_url)
    command.downgrade(cfg, "0011")
    engine = create_engine(database_url)
    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    questions = table("questions", *map(column, ["id", "qhash", "text", "normalized", "created_at", "canonical_id",
                                                 "is_faq"]))
    stored = [("비밀번호 재설정 방법", 1), ("비밀번호재설정 방법", 0), ("How do I reset it?", 0)]
    with engine.begin() as conn:
        for i, (text, age) in enumerate(stored, 1):
            old = text.lower().rstrip("?")
            conn.execute(questions.insert().values(id=i, qhash=question_hash(old), text=text, normalized=old,
                                                   created_at=t0 - timedelta(days=age), is_faq=False))
    command.upgrade(cfg, "head")
    with engine.connect() as conn:
        rows = {r.id: r for r in conn.execute(select(questions))}
    engine.dispose()
    assert rows[1].normalized == "비밀번호재설정방법" and rows[1].qhash == question_hash("비밀번호재설정방법")
    assert rows[2].canonical_id == 1 and rows[2].qhash != rows[1].qhash  # the younger one points at the older
    assert rows[3].qhash == question_hash("how do i reset it")  # English as before
