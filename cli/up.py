"""`precache up`: the whole system on one machine, each process started again if it exits, all stopped
together on Ctrl-C."""

import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import click
import redis

from cli.common import drop_hot_cache_or_warn
from precache.db import upgrade
from precache.logs import redact

PROCESSES = ("web", "worker", "beat", "flower")


class Restarts:
    """When to start a process that exited again: always, unless it keeps exiting soon after it starts.

    A worker killed by a model crash or the OOM killer after running a while comes back at once; one
    that exits `limit` times in a row within `quick_s` of its start is broken (a bad setting, a model
    that cannot load), not unlucky, and starting it again cannot help.
    """

    def __init__(self, quick_s: float = 30.0, limit: int = 3):
        self.quick_s, self.limit = quick_s, limit
        self.started_at: dict[str, float] = {}
        self.quick_exits: dict[str, int] = {}

    def started(self, name: str) -> None:
        self.started_at[name] = time.monotonic()

    def allow(self, name: str) -> bool:
        """Record that `name` exited; tell whether to start it again."""
        quick = time.monotonic() - self.started_at.get(name, 0.0) < self.quick_s
        self.quick_exits[name] = self.quick_exits.get(name, 0) + 1 if quick else 0
        return self.quick_exits[name] < self.limit


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
    port = urlparse(settings.redis_url).port or 6379
    proc = _redis_server(binary, port, settings.var_dir / "redis")
    for _ in range(50):
        if redis_reachable(settings.redis_url):
            click.echo(f"no Redis was running: started a private redis-server on 127.0.0.1:{port}")
            return proc
        time.sleep(0.1)
    proc.terminate()
    raise click.ClickException(f"started redis-server on port {port} but it does not answer")


def _redis_server(binary: str, port: int, data: Path) -> subprocess.Popen:
    """Start redis-server on 127.0.0.1:`port`, keeping nothing on disk but in `data`."""
    data.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen([binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "",
                             "--appendonly", "no", "--dir", str(data.resolve())], stdout=subprocess.DEVNULL,
                            start_new_session=True)


def run(settings) -> None:
    """Start every process, print where to reach them, and stop them all on Ctrl-C or SIGTERM."""
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    children: dict[str, subprocess.Popen] = {}
    if not redis_reachable(settings.redis_url):
        children["redis"] = start_private_redis(settings)
    if upgrade(settings.database_url):
        drop_hot_cache_or_warn(settings)
    restarts = Restarts()
    for name in PROCESSES:
        children[name] = _start(name)
        restarts.started(name)
    click.echo(f"precache is up: API http://{settings.web_host}:{settings.web_port}/v1/ask, "
               f"Flower http://127.0.0.1:{settings.flower_port}; Ctrl-C stops everything")
    # Explicit handlers: a process started in the background may inherit an ignored SIGINT.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        _watch(children, restarts)
    except KeyboardInterrupt:
        click.echo("stopping ...")
    finally:
        _stop(children)


def _start(name: str) -> subprocess.Popen:
    # Own sessions: Ctrl-C reaches `up` alone, which stops each child exactly once.
    return subprocess.Popen([sys.executable, "-m", "cli", name], start_new_session=True)


def _watch(children: dict[str, subprocess.Popen], restarts: Restarts) -> None:
    """Start an app process that exits again (see Restarts); return once every child is gone for good."""
    given_up = set()
    while True:
        for name, proc in children.items():
            if proc.poll() is None or name in given_up:
                continue
            if name in PROCESSES and restarts.allow(name):
                click.echo(f"{name} exited with code {proc.returncode}; starting it again", err=True)
                children[name] = _start(name)
                restarts.started(name)
            else:
                given_up.add(name)
                why = (f" {restarts.limit} times within {restarts.quick_s:.0f} s of its start"
                       if name in PROCESSES else "")
                click.echo(f"{name} exited with code {proc.returncode}{why}; not starting it again, "
                           "the others keep running", err=True)
        if len(given_up) == len(children):
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
