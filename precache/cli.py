"""The `precache` command line."""

import json
import os
import socket
import sys
import time
from pathlib import Path

import click

from precache.config import ConfigError, load_settings
from precache.logs import redact
from precache.queueing import ALL_QUEUES, GENERATION_QUEUES


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


@click.group()
def main():
    """precache: instant answers for slow LLMs."""


@main.command()
@click.option("--host", default=None, help="Listen address (default PRECACHE_WEB_HOST).")
@click.option("--port", type=int, default=None, help="Listen port (default PRECACHE_WEB_PORT).")
def web(host, port):
    """Serve the HTTP API with gunicorn."""
    s = settings_or_exit()
    bind = f"{host or s.web_host}:{port or s.web_port}"
    argv = [sys.executable, "-m", "gunicorn", "--bind", bind, "--workers", str(s.web_workers),
            "--worker-class", "gthread", "--threads", str(s.web_threads), "--access-logfile", "-",
            "--config", "python:web.gunicorn_conf", "web:create_app()"]
    os.execve(sys.executable, argv, os.environ | {"PROMETHEUS_MULTIPROC_DIR": str(fresh_metrics_dir(s))})


def fresh_metrics_dir(settings) -> Path:
    """Return an empty folder for the web workers' shared Prometheus counters."""
    import shutil

    path = (settings.var_dir / "prometheus").resolve()
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def worker_argv(gpu: str | None, queues: str | None, loglevel: str) -> tuple[list[str], dict]:
    """Return the celery command line and environment of a worker."""
    env = dict(os.environ)
    chosen = queues.split(",") if queues else list(GENERATION_QUEUES if gpu is not None else ALL_QUEUES)
    unknown = set(chosen) - set(ALL_QUEUES)
    if unknown:
        raise click.BadParameter(f"unknown queue(s) {sorted(unknown)}; choose from {list(ALL_QUEUES)}")
    generates = bool(set(chosen) & set(GENERATION_QUEUES))
    # One process holds the model: CUDA (and llama.cpp threads) do not survive a fork. One pool thread runs
    # the batches while the main thread's consumer loop stays free: heartbeats, `inspect ping` and Flower see
    # the worker alive during a long generation (the solo pool runs tasks in that loop and goes silent).
    pool = ["--pool", "threads", "--concurrency", "1"] if generates else ["--pool", "prefork", "--concurrency", "2"]
    if gpu is not None:
        env["CUDA_VISIBLE_DEVICES"] = gpu  # before the worker process imports torch
        name = f"gpu{gpu}@%h"
    else:
        name = "cpu@%h"
    argv = [sys.executable, "-m", "celery", "-A", "worker", "worker", "--hostname", name,
            "--queues", ",".join(chosen), "--loglevel", loglevel, *pool]
    return argv, env


@main.command()
@click.option("--gpu", default=None,
              help="Pin this worker to GPU N (sets CUDA_VISIBLE_DEVICES=N); 'all': one pinned worker per visible "
                   "GPU (CUDA_VISIBLE_DEVICES when set, else nvidia-smi -L), supervised.")
@click.option("--queues", default=None, help="Comma-separated queues (default: all; with --gpu: generation).")
@click.option("--loglevel", default="info", show_default=True)
def worker(gpu, queues, loglevel):
    """Run a Celery worker (a GPU worker with --gpu N, one per GPU with --gpu all, else a CPU worker)."""
    if gpu is not None and gpu != "all" and not gpu.isdigit():
        raise click.BadParameter("--gpu takes a device number such as 0, or all", param_hint="--gpu")
    settings_or_exit()
    if gpu == "all":
        raise SystemExit(_pinned_workers(queues, loglevel))
    argv, env = worker_argv(gpu, queues, loglevel)
    os.execve(sys.executable, argv, env)


def _pinned_workers(queues, loglevel) -> int:
    from precache.gpus import supervise, visible_gpus

    gpus = visible_gpus(os.environ)
    if not gpus:
        raise click.ClickException("--gpu all found no GPU: CUDA_VISIBLE_DEVICES is not set and nvidia-smi -L "
                                   "lists none; start a CPU worker without --gpu")
    return supervise({f"gpu{gpu}": worker_argv(gpu, queues, loglevel) for gpu in gpus}, click.echo)


@main.command()
@click.option("--loglevel", default="info", show_default=True)
def beat(loglevel):
    """Run Celery beat: the scheduled precompute jobs."""
    s = settings_or_exit()
    s.var_dir.mkdir(parents=True, exist_ok=True)
    os.execv(sys.executable, [sys.executable, "-m", "celery", "-A", "worker", "beat", "--loglevel", loglevel])


@main.command()
@click.option("--port", type=int, default=None, help="Listen port (default PRECACHE_FLOWER_PORT).")
@click.option("--address", default="127.0.0.1", show_default=True, help="Listen address.")
def flower(port, address):
    """Run Flower, the monitor of workers, queues and tasks."""
    s = settings_or_exit()
    env = dict(os.environ)
    if address in ("127.0.0.1", "localhost", "::1"):
        # Flower's JSON API needs auth or this opt-in; on loopback only local users reach it.
        env.setdefault("FLOWER_UNAUTHENTICATED_API", "true")
    argv = [sys.executable, "-m", "celery", "-A", "worker", "flower", f"--port={port or s.flower_port}",
            f"--address={address}"]
    os.execve(sys.executable, argv, env)


@main.group()
def db():
    """Database schema commands."""


@db.command()
def upgrade():
    """Migrate the database to the newest schema."""
    from precache.db import upgrade as run_upgrade

    s = settings_or_exit()
    run_upgrade(s.database_url)
    click.echo(f"database at {redact(s.database_url)} is up to date")


@main.group()
def faq():
    """FAQ entries."""


TENANT = click.option("--tenant", default="", help="The tenant whose namespace this works in (default: none).")


def _read_or_exit(reader, file: Path) -> list:
    """Return every entry of a file, or print each bad line with its number and stop."""
    from precache.faq import FaqFileError

    try:
        return reader(file)
    except FaqFileError as exc:
        for problem in exc.problems:
            click.echo(f"{file}: {problem}", err=True)
        raise click.ClickException(str(exc)) from None


@faq.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@TENANT
def faq_import(file, tenant):
    """Import FAQ entries from a CSV, JSON or JSONL file (`question`, optional `answer` and `reference`)."""
    from tqdm import tqdm

    from precache.faq import import_faq, read_faq

    entries = _read_or_exit(read_faq, file)
    ctx = context(tenant)
    with tqdm(total=len(entries), desc="importing", unit="q") as bar:
        counts = import_faq(ctx, entries, progress=lambda: bar.update())
    click.echo(f"imported {counts['questions']} questions, {counts['curated_answers']} curated answers")


@main.command()
@click.option("--wait", is_flag=True, help="Show progress until every queued answer is done.")
@TENANT
def precompute(wait, tenant):
    """Queue generation for every FAQ question without an answer."""
    from precache.precompute import queue_unanswered

    ctx = context(tenant)
    job_ids = queue_unanswered(ctx)
    click.echo(f"queued {len(job_ids)} questions")
    if wait and job_ids:
        _wait_for_jobs(ctx, job_ids)


def _wait_for_jobs(ctx, job_ids: list[str]) -> None:
    from tqdm import tqdm

    pending, failed = set(job_ids), 0
    with tqdm(total=len(job_ids), desc="generating", unit="q") as bar:
        while pending:
            for job_id in list(pending):
                record = ctx.jobs.get(job_id)
                if record is None or record["status"] != "pending":
                    pending.discard(job_id)
                    failed += record is None or record["status"] == "failed"
                    bar.update()
            time.sleep(0.5)
    click.echo(f"done: {len(job_ids) - failed} answered, {failed} failed")
    if failed:
        raise SystemExit(1)


@main.command()
@click.argument("question")
@click.option("--wait-ms", type=int, default=30000, show_default=True, help="How long to wait for a new answer.")
@click.option("--json", "as_json", is_flag=True, help="Print the whole response as JSON.")
def ask(question, wait_ms, as_json):
    """Ask a question through the answer ladder, as the web does."""
    from web import create_app

    from precache.db import make_engine

    engine = make_engine(settings_or_exit().database_url)
    try:  # the ladder answers with the database down, not with it unmigrated: that is a set-up step to take
        schema_or_exit(engine, reachable=False)
    finally:
        engine.dispose()
    app = create_app()
    response = app.test_client().post("/v1/ask", json={"question": question, "wait_ms": wait_ms})
    app.extensions["precache"].close()
    body = response.get_json()
    if as_json:
        click.echo(json.dumps(body, indent=2))
    elif "error" in body and "answer" not in body:
        raise click.ClickException(body["error"]["message"])
    else:
        click.echo(f"[{body['source']}] {body['answer']}")


@main.command()
def stats():
    """Print asks by source, answers stored and queue depths."""
    from precache.stats import collect

    for section, rows in collect(context()).items():
        click.echo(f"{section}:")
        for key, value in rows.items():
            click.echo(f"  {key:<14} {value}")


@main.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--output", "-o", type=click.File("w"), default="-", show_default=True, help="Where to write JSONL.")
@click.option("--judge", is_flag=True, help="Also have the configured LLM rate each answer (loads the model).")
def score(file, output, judge):
    """Score answers: JSONL lines {question, answer, reference?} in, the same with quality and components out."""
    from tqdm import tqdm

    from precache.embedder import embedder_for
    from precache.quality import Scorer, item_tuple, read_items

    items = _read_or_exit(read_items, file)
    s = settings_or_exit()
    scorer = Scorer(embedder_for(s, threads=None), judge=_judge(s) if judge else None)
    with tqdm(total=len(items), desc="scoring", unit="answer", file=sys.stderr) as bar:
        for start in range(0, len(items), 64):
            chunk = items[start:start + 64]
            for item, result in zip(chunk, scorer.score_many([item_tuple(i) for i in chunk])):
                output.write(json.dumps({**item, "quality": result.quality, "components": result.components}) + "\n")
            bar.update(len(chunk))


def _judge(settings):
    from precache.quality import llm_judge
    from worker.backends import BackendError, load_backend

    try:
        return llm_judge(load_backend(settings))
    except BackendError as exc:
        raise click.ClickException(f"cannot load the judge model: {exc}") from None


@main.group()
def admin():
    """Review answers below the quality threshold; approve, invalidate, pin or replace answers."""


@admin.command("review")
@TENANT
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines instead of a table.")
def admin_review(tenant, limit, as_json):
    """List answers below the quality threshold that nobody approved or rejected, worst first."""
    from precache.admin import awaiting_review

    rows = awaiting_review(context(tenant), limit)
    for row in rows:
        if as_json:
            click.echo(json.dumps(row))
        else:
            click.echo(f"#{row['answer_id']:<6} q={row['quality']:.3f}  {row['question'][:60]!r} -> "
                       f"{row['answer'][:60]!r}")
    if not as_json:
        click.echo(f"{len(rows)} answer(s) awaiting review")


def _admin_action(action, answer_id: int, tenant: str, *args) -> None:
    from precache.admin import NotFound

    try:
        view = action(context(tenant), answer_id, *args)
    except NotFound as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(json.dumps(view))


@admin.command("approve")
@click.argument("answer_id", type=int)
@TENANT
def admin_approve(answer_id, tenant):
    """Serve an answer whatever its quality score."""
    from precache.admin import approve

    _admin_action(approve, answer_id, tenant)


@admin.command("invalidate")
@click.argument("answer_id", type=int)
@TENANT
def admin_invalidate(answer_id, tenant):
    """Never serve an answer again (the next asker gets the next best one, or a new one)."""
    from precache.admin import reject

    _admin_action(reject, answer_id, tenant)


@admin.command("pin")
@click.argument("answer_id", type=int)
@click.option("--unpin", is_flag=True, help="Stop pinning the answer.")
@TENANT
def admin_pin(answer_id, unpin, tenant):
    """Serve an answer before any other of its question."""
    from precache.admin import pin

    _admin_action(pin, answer_id, tenant, not unpin)


@admin.command("replace")
@click.argument("answer_id", type=int)
@click.argument("text")
@TENANT
def admin_replace(answer_id, text, tenant):
    """Replace an answer by TEXT, stored as the question's curated answer."""
    from precache.admin import replace

    if not text.strip():
        raise click.BadParameter("the new answer is empty", param_hint="TEXT")
    _admin_action(replace, answer_id, tenant, text.strip())


@main.command()
def up():
    """Start web, worker, beat and flower on the embedded defaults (Ctrl-C stops them all)."""
    from precache.up import run

    run(settings_or_exit())


def port_open(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--target", type=float, default=0.005, show_default=True, help="Wrong-hit rate to meet (0.005 = 0.5 %).")
@click.option("--askers", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Intent CSV whose queries ask (e.g. test.csv); default: the uncached rows of FILE.")
@click.option("--per-intent", type=int, default=3, show_default=True, help="Phrasings cached per intent (CSV).")
@click.option("--oos", type=click.Path(exists=True, dir_okay=False, path_type=Path), multiple=True,
              help="Another data set whose questions ask, out of scope, with each intent CSV (repeatable).")
@click.option("--oos-limit", type=int, default=1000, show_default=True, help="Out-of-scope asks drawn from --oos.")
@click.option("--limit", type=int, default=None, help="Ask at most N questions per file (a seeded sample).")
@click.option("--unanswered", type=click.FloatRange(0, 0.9), default=0.25, show_default=True,
              help="Share of an intent CSV's intents also left out of the cache, their queries asking as out of "
              "scope (questions near the cached ones that the cache cannot answer); 0 skips that run.")
@click.option("--seed", type=int, default=0, show_default=True)
def calibrate(files, target, askers, per_intent, oos, oos_limit, limit, unanswered, seed):
    """Print the semantic tier's hit / wrong-hit curve on labelled FILES and the threshold meeting --target."""
    from precache.calibrate import run
    from precache.embedder import embedder_for

    s = settings_or_exit()
    run(files, s, embedder_for(s, threads=None), echo=click.echo, target=target, askers=askers,
        per_intent=per_intent, oos=oos, oos_limit=oos_limit, limit=limit, seed=seed, unanswered=unanswered)


@admin.command("learned")
@click.option("--tenant", default=None, help="Only this tenant's learned phrasings (default: every tenant's).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines instead of a table.")
def admin_learned(tenant, as_json):
    """List the phrasings learned from askers' feedback: who taught each, when, and whether it was retracted."""
    from precache.feedback import learned

    rows = learned(context(""), tenant)
    for row in rows:
        if as_json:
            click.echo(json.dumps(row))
        else:
            state = f"retracted by {row['retracted_by']}" if row["retracted_at"] else "active"
            click.echo(f"#{row['id']:<6} {row['phrasing'][:60]!r} -> answer {row['answer_id']}  "
                       f"[{row['tenant'] or '-'}] taught by {row['taught_by']} at {row['taught_at'][:19]}; {state}")
    if not as_json:
        click.echo(f"{len(rows)} learned phrasing(s)")


@admin.command("unlearn")
@click.argument("link_id", type=int)
def admin_unlearn(link_id):
    """Retract a learned phrasing (ID from `precache admin learned`): it is served that answer no more."""
    from precache.feedback import unlearn

    view = unlearn(context(""), link_id, by="admin (cli)")
    if view is None:
        raise click.ClickException(f"no learned phrasing {link_id}; list them with `precache admin learned`")
    click.echo(json.dumps(view))
