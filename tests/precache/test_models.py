"""The SQL models (precache/models.py) are the schema the migrations build."""

from alembic import command

from precache.db import alembic_config


def test_models_match_the_migrated_schema(database_url):
    command.check(alembic_config(database_url))  # raises if autogenerate would find changes
