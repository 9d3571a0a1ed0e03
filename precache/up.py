"""`precache up`: the whole system on one machine, stopped together on Ctrl-C."""

import shutil
import signal
import subprocess
import sys
import time
from urllib.parse import urlparse

import click
import redis

from precache.db import upgrade
from precache.logs import redact

PROCESSES = ("web", "worker", "beat", "flower")


def redis_reachable(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


def start_private_redis(settings) -> subprocess.Popen:
    """Start a redis-server for this run on the configured port; say so."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise click.ClickException(
            f"no Redis at {redact(settings.redis_url)} and no redis-server on the PATH; "
            "install one (apt-get install redis-server) or set PRECACHE_REDIS_URL")
    url = urlparse(settings.redis_url)
    port = url.port or 6379
    data = settings.var_dir / "redis"
    data.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen([binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "",
                             "--appendonly", "no", "--dir", str(data.resolve())], stdout=subprocess.DEVNULL,
                            start_new_session=True)
    for _ in range(50):
        if redis_reachable(settings.redis_url):
            click.echo(f"no Redis was running: started a private redis-server on 127.0.0.1:{port}")
            return proc
        time.sleep(0.1)
    proc.terminate()
    raise click.ClickException(f"started redis-server on port {port} but it does not answer")


def run(settings) -> None:
    """Start every process, print where to reach them, and stop them all on Ctrl-C or SIGTERM."""
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    children: dict[str, subprocess.Popen] = {}
    if not redis_reachable(settings.redis_url):
        children["redis"] = start_private_redis(settings)
    upgrade(settings.database_url)
    for name in PROCESSES:
        # Own sessions: Ctrl-C reaches `up` alone, which stops each child exactly once.
        children[name] = subprocess.Popen([sys.executable, "-m", "precache", name], start_new_session=True)
    click.echo(f"precache is up: API http://{settings.web_host}:{settings.web_port}/v1/ask, "
               f"Flower http://127.0.0.1:{settings.flower_port}; Ctrl-C stops everything")
    # Explicit handlers: a process started in the background may inherit an ignored SIGINT.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        _watch(children)
    except KeyboardInterrupt:
        click.echo("stopping ...")
    finally:
        _stop(children)


def _watch(children: dict[str, subprocess.Popen]) -> None:
    reported = set()
    while True:
        for name, proc in children.items():
            if proc.poll() is not None and name not in reported:
                reported.add(name)
                click.echo(f"{name} exited with code {proc.returncode}; the others keep running", err=True)
        if len(reported) == len(children):
            return
        time.sleep(0.5)


def _stop(children: dict[str, subprocess.Popen]) -> None:
    # Stop the app processes first and Redis last, so nothing loses its broker mid-shutdown.
    apps = [proc for name, proc in children.items() if name != "redis"]
    terminate(apps)
    if "redis" in children:
        terminate([children["redis"]])


def terminate(procs: list[subprocess.Popen]) -> None:
    """Stop processes gracefully (SIGTERM), killing those still running after 15 s."""
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()  # SIGTERM: the graceful stop of gunicorn, celery, flower and redis
    for proc in procs:
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
