"""Migrations: one head, the tables they build, down to base and up again."""

from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect

from precache.db import alembic_config


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
