"""Alembic environment: the URL comes from the config built by precache.db, or from settings."""

from alembic import context

from precache.db import make_engine
from precache.models import Base

config = context.config
url = config.get_main_option("sqlalchemy.url")
if not url:
    from precache.config import load_settings

    url = load_settings().database_url


def run_migrations_offline() -> None:
    context.configure(url=url, target_metadata=Base.metadata, literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = make_engine(url)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
