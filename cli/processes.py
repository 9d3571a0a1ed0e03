"""Process commands: web, worker, beat, flower, and `up` (all of them on one machine)."""

import os
import sys
from pathlib import Path

import click

from cli.common import settings_or_exit
from precache.queueing import ALL_QUEUES, GENERATION_QUEUES


@click.command()
@click.option("--host", default=None, help="Listen address (default PRECACHE_WEB_HOST).")
@click.option("--port", type=int, default=None, help="Listen port (default PRECACHE_WEB_PORT).")
def web(host, port):
    """Serve the HTTP API with gunicorn."""
    s = settings_or_exit()
    bind = f"{host or s.web_host}:{port or s.web_port}"
    argv = [sys.executable, "-m", "gunicorn", "--bind", bind, "--workers", str(s.web_workers),
            *worker_class_args(s), "--access-logfile", "-", "--config", "python:web.gunicorn_conf", "web:create_app()"]
    os.execve(sys.executable, argv, os.environ | {"PROMETHEUS_MULTIPROC_DIR": str(fresh_metrics_dir(s))})


def worker_class_args(settings) -> list[str]:
    """gunicorn's worker class options. gevent (the default): a waiting ask or an open stream waits on Redis
    without a thread of its own, up to WEB_CONNECTIONS per worker; gthread: WEB_THREADS requests at once."""
    if settings.web_worker_class == "gevent":
        return ["--worker-class", "gevent", "--worker-connections", str(settings.web_connections)]
    return ["--worker-class", "gthread", "--threads", str(settings.web_threads)]


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
    chosen = _queues(gpu, queues)
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


def _queues(gpu: str | None, queues: str | None) -> list[str]:
    """The queues asked for (default: all; with a GPU: generation); refuse an unknown one."""
    chosen = queues.split(",") if queues else list(GENERATION_QUEUES if gpu is not None else ALL_QUEUES)
    unknown = set(chosen) - set(ALL_QUEUES)
    if unknown:
        raise click.BadParameter(f"unknown queue(s) {sorted(unknown)}; choose from {list(ALL_QUEUES)}")
    return chosen


@click.command()
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
    from cli.gpus import supervise, visible_gpus

    gpus = visible_gpus(os.environ)
    if not gpus:
        raise click.ClickException("--gpu all found no GPU: CUDA_VISIBLE_DEVICES is not set and nvidia-smi -L "
                                   "lists none; start a CPU worker without --gpu")
    return supervise({f"gpu{gpu}": worker_argv(gpu, queues, loglevel) for gpu in gpus}, click.echo)


@click.command()
@click.option("--loglevel", default="info", show_default=True)
def beat(loglevel):
    """Run Celery beat: the scheduled precompute jobs."""
    s = settings_or_exit()
    s.var_dir.mkdir(parents=True, exist_ok=True)
    os.execv(sys.executable, [sys.executable, "-m", "celery", "-A", "worker", "beat", "--loglevel", loglevel])


@click.command()
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


@click.command()
def up():
    """Start web, worker, beat and flower on the embedded defaults (Ctrl-C stops them all)."""
    from cli.up import run

    run(settings_or_exit())


COMMANDS = (web, worker, beat, flower, up)
