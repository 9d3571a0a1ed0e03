"""Engine, the one sessionmaker, and schema migration through Alembic."""

from contextlib import contextmanager
from functools import cache
from importlib import resources
from pathlib import Path

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker


def make_engine(url: str) -> Engine:
    """Create an engine; SQLite gets its folder, WAL and foreign keys."""
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True)


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    # WAL lets the web read while a worker writes; with WAL, synchronous=NORMAL stays consistent
    # after a crash and spares an fsync per commit. Foreign keys are off by default in SQLite.
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def session_scope(factory: sessionmaker[Session]):
    """Yield a session that commits on success and rolls back on error."""
    with factory() as session, session.begin():
        yield session


def alembic_config(url: str):
    """Return an Alembic config for the packaged migrations and this database."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("migrations")))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> bool:
    """Migrate the database at `url` to `revision`; tell whether its schema changed."""
    from alembic import command

    engine = make_engine(url)  # creates the SQLite folder
    try:
        before = _current_heads(engine)
        command.upgrade(alembic_config(url), revision)
        return _current_heads(engine) != before
    finally:
        engine.dispose()


def _current_heads(engine: Engine) -> frozenset[str]:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return frozenset(MigrationContext.configure(conn).get_current_heads())


class SchemaNotCurrent(Exception):
    """The database has no schema, or one of another version of precache."""


@cache
def _revisions() -> tuple[frozenset[str], frozenset[str]]:
    """Return (head revisions, every revision) of the packaged migrations."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config(""))
    return frozenset(script.get_heads()), frozenset(r.revision for r in script.walk_revisions())


def check_schema(engine: Engine) -> None:
    """Raise SchemaNotCurrent, saying what to do, unless the database is migrated to this version's head."""
    heads, known = _revisions()
    current = _current_heads(engine)
    if current == heads:
        return
    if not current:
        raise SchemaNotCurrent("the database has no schema yet: run `precache db upgrade`")
    if current - known:
        raise SchemaNotCurrent(f"the database schema ({', '.join(sorted(current))}) is from a newer version of "
                               "precache than this one: run that version, or this one on another database")
    raise SchemaNotCurrent(f"the database schema ({', '.join(sorted(current))}) is older than this version's "
                           f"({', '.join(sorted(heads))}): run `precache db upgrade`")


def report_schema(engine: Engine, log) -> None:
    """Log an error at start-up when the schema is not this version's (the process still starts: asks are kept in Redis)."""
    from sqlalchemy.exc import SQLAlchemyError

    try:
        check_schema(engine)
    except SchemaNotCurrent as exc:
        log.error("%s; until then no answer can be stored or read from SQL", exc)
    except SQLAlchemyError as exc:
        log.warning("database not reachable at start-up: %s", str(exc).splitlines()[0])
