"""Answer commands: migrate the database, import the FAQ, precompute, ask, stats."""

import json
import time
from pathlib import Path

import click

from cli.common import TENANT, context, drop_hot_cache_or_warn, read_or_exit, schema_or_exit, settings_or_exit
from precache.jobs import Jobs
from precache.logs import redact


@click.group()
def db():
    """Database schema commands."""


@db.command()
def upgrade():
    """Migrate the database to the newest schema."""
    from precache.db import upgrade as run_upgrade

    s = settings_or_exit()
    if run_upgrade(s.database_url):
        drop_hot_cache_or_warn(s)
    click.echo(f"database at {redact(s.database_url)} is up to date")


@click.group()
def faq():
    """FAQ entries."""


@faq.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@TENANT
def faq_import(file, tenant):
    """Import FAQ entries from a CSV, JSON or JSONL file (`question`, optional `answer` and `reference`)."""
    from tqdm import tqdm

    from precache.faq import import_faq, read_faq

    entries = read_or_exit(read_faq, file)
    ctx = context(tenant)
    with tqdm(total=len(entries), desc="importing", unit="q") as bar:
        counts = import_faq(ctx, entries, progress=lambda: bar.update())
    click.echo(f"imported {counts['questions']} questions, {counts['curated_answers']} curated answers")


@click.command()
@click.option("--wait", is_flag=True, help="Show progress until every queued answer is done.")
@TENANT
def precompute(wait, tenant):
    """Queue generation for every FAQ question without an answer."""
    from precache.precompute import queue_unanswered

    ctx = context(tenant)
    job_ids = queue_unanswered(ctx)
    click.echo(f"queued {len(job_ids)} questions")
    if wait and job_ids:
        _wait_for_jobs(ctx.jobs, job_ids)


def _wait_for_jobs(jobs: Jobs, job_ids: list[str]) -> None:
    """Show the jobs' progress until each ended; exit 1 when one failed."""
    from tqdm import tqdm

    pending, failed = set(job_ids), 0
    with tqdm(total=len(job_ids), desc="generating", unit="q") as bar:
        while pending:
            for job_id in list(pending):
                record = jobs.get(job_id)
                if record is None or record["status"] != "pending":
                    pending.discard(job_id)
                    failed += record is None or record["status"] == "failed"
                    bar.update()
            time.sleep(0.5)
    click.echo(f"done: {len(job_ids) - failed} answered, {failed} failed")
    if failed:
        raise SystemExit(1)


@click.command()
@click.argument("question")
@click.option("--wait-ms", type=int, default=30000, show_default=True, help="How long to wait for a new answer.")
@click.option("--json", "as_json", is_flag=True, help="Print the whole response as JSON.")
def ask(question, wait_ms, as_json):
    """Ask a question through the answer ladder, as the web does."""
    from web.errors import ApiError
    from web.ladder import Ladder
    from web.schemas import check_limits

    settings = settings_or_exit()
    _migrated_or_exit()
    try:
        check_limits(question, wait_ms, settings)
    except ApiError as exc:
        raise click.ClickException(exc.message) from None
    ladder = Ladder.from_settings(settings)
    try:
        body = ladder.answer(ladder.ask(question, wait_ms)).body
    except ApiError as exc:
        raise click.ClickException(exc.message) from None
    finally:
        ladder.close()
    if as_json:
        click.echo(json.dumps(body, indent=2))
    else:
        click.echo(f"[{body['source']}] {body['answer']}")


def _migrated_or_exit() -> None:
    """Exit when the database is reachable but not migrated."""
    from precache.db import make_engine

    engine = make_engine(settings_or_exit().database_url)
    try:  # the ladder answers with the database down, not with it unmigrated: that is a set-up step to take
        schema_or_exit(engine, reachable=False)
    finally:
        engine.dispose()


@click.command()
def stats():
    """Print asks by source, answers stored and queue depths."""
    from precache.stats import collect

    for section, rows in collect(context()).items():
        click.echo(f"{section}:")
        for key, value in rows.items():
            click.echo(f"  {key:<14} {value}")


@click.command()
def reembed():
    """Embed again, under the configured embedder, the questions and feedback embedded under another."""
    from tqdm import tqdm

    from precache.semantic.embedders import embedder_for
    from precache.semantic.reembed import pending
    from precache.semantic.reembed import reembed as run

    ctx = context()
    questions, feedback = pending(ctx)
    with tqdm(total=len(questions), desc="re-embedding questions", unit="q", disable=not questions) as bar:
        done = run(ctx, embedder_for(ctx.settings, threads=None), progress=bar.update)
    click.echo(f"under {done['embedder']}: {done['questions']} questions and {done['feedback']} feedback vectors "
               f"embedded again ({feedback} feedback vectors were of another embedder)")


COMMANDS = (db, faq, precompute, ask, stats, reembed)
