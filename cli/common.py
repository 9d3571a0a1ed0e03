"""What every command shares: settings, a database context for a tenant, and clear stops."""

from pathlib import Path

import click

from precache.config import ConfigError, load_settings
from precache.logs import redact

TENANT = click.option("--tenant", default="", help="The tenant whose namespace this works in (default: none).")


def settings_or_exit():
    try:
        return load_settings()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


def context(tenant: str = ""):
    from precache.context import Context
    from web.schemas import TENANT_PATTERN

    if tenant and not TENANT_PATTERN.fullmatch(tenant):
        raise click.BadParameter("use 1-64 letters, digits, '.', '_' or '-'", param_hint="--tenant")
    ctx = Context(settings_or_exit())
    click.get_current_context().call_on_close(ctx.close)
    schema_or_exit(ctx.engine)
    return ctx.for_tenant(tenant)


def schema_or_exit(engine, reachable: bool = True) -> None:
    """Stop with what to do when the database is not migrated to this version (or, with `reachable`, not reachable)."""
    from sqlalchemy.exc import SQLAlchemyError

    from precache.db import SchemaNotCurrent, check_schema

    try:
        check_schema(engine)
    except SchemaNotCurrent as exc:
        raise click.ClickException(str(exc)) from None
    except SQLAlchemyError as exc:
        if reachable:
            raise click.ClickException(f"cannot reach the database: {redact(str(exc).splitlines()[0])}") from None


def read_or_exit(reader, file: Path) -> list:
    """Return every entry of a file, or print each bad line with its number and stop."""
    from precache.faq import FaqFileError

    try:
        return reader(file)
    except FaqFileError as exc:
        for problem in exc.problems:
            click.echo(f"{file}: {problem}", err=True)
        raise click.ClickException(str(exc)) from None


def drop_hot_cache_or_warn(settings) -> None:
    """After the schema changed: drop the hot cache (keys may have changed with it); SQL refills it."""
    import redis

    from precache.store import drop_hot_cache

    client = redis.Redis.from_url(settings.redis_url, socket_connect_timeout=2)
    try:
        click.echo(f"schema changed: {drop_hot_cache(client)} hot-cache entries dropped; SQL refills them")
    except redis.RedisError as exc:
        click.echo(f"schema changed, but Redis is not reachable ({exc}): delete its precache:answer:* keys "
                   "before the web serves again", err=True)
    finally:
        client.close()
