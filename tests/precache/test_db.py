"""The schema check: what a process says when the database is not at this version's schema."""

import logging

import pytest
from alembic import command
from sqlalchemy import text

from precache.db import SchemaNotCurrent, alembic_config, check_schema, make_engine, report_schema


def test_check_schema_says_what_to_do_in_each_state(database_url):
    engine = make_engine(database_url)
    check_schema(engine)  # migrated to head: nothing to say
    cfg = alembic_config(database_url)
    command.downgrade(cfg, "-1")
    with pytest.raises(SchemaNotCurrent, match=r"is older than this version's .*run `precache db upgrade`"):
        check_schema(engine)
    command.downgrade(cfg, "base")
    with pytest.raises(SchemaNotCurrent, match="has no schema yet: run `precache db upgrade`"):
        check_schema(engine)
    command.upgrade(cfg, "head")
    with engine.begin() as conn:  # as a later precache version would leave it
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(SchemaNotCurrent, match="from a newer version of precache"):
        check_schema(engine)
    engine.dispose()


def test_processes_say_at_start_up_that_the_schema_is_missing(tmp_path, caplog):
    engine = make_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    report_schema(engine, logging.getLogger("web"))
    said = [r for r in caplog.records if r.name == "web"]
    assert [r.levelname for r in said] == ["ERROR"] and "run `precache db upgrade`" in said[0].getMessage()
    engine.dispose()
