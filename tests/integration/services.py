"""Private Redis and PostgreSQL servers that a fault test may stop and start (never the shared ones)."""

import glob
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
import redis as redis_lib

from tests.integration.conftest import free_port


class PrivateRedis:
    """A redis-server on a free loopback port with a password, nothing saved: a restart starts it empty."""

    def __init__(self, folder: Path, password: str):
        self.folder, self.password, self.port = folder, password, free_port()
        self.proc: subprocess.Popen | None = None

    def url(self, db: int) -> str:
        return f"redis://:{self.password}@127.0.0.1:{self.port}/{db}"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--requirepass", self.password,
             "--save", "", "--appendonly", "no", "--dir", str(self.folder)],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        client = redis_lib.Redis.from_url(self.url(0))
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis_lib.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        client.close()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.proc = None


def _postgres_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if not found:
        raise RuntimeError("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin")
    return Path(found[-1]).parent


class PrivatePostgres:
    """A PostgreSQL cluster of its own (initdb, pg_ctl as the postgres OS user) on a free loopback port."""

    def __init__(self, password: str):
        self.bin, self.port, self.password = _postgres_bin(), free_port(), password
        self.folder = Path(tempfile.mkdtemp(prefix="precache-pg-"))
        self.data, self.log = self.folder / "data", self.folder / "server.log"

    def _run(self, *args: str) -> None:
        command = [str(self.bin / args[0]), *args[1:]]
        if os.geteuid() == 0:  # the server refuses to run as root
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    def init(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres")
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "-N")
        self.start()
        with psycopg.connect(self.url("postgres", driver=False), autocommit=True) as conn:
            conn.execute("CREATE DATABASE precache")

    def url(self, db: str = "precache", driver: bool = True) -> str:
        scheme = "postgresql+psycopg" if driver else "postgresql"
        # trust auth ignores the password; it is there so that tests can look for it in logs
        return f"{scheme}://postgres:{self.password}@127.0.0.1:{self.port}/{db}"

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.folder} -c fsync=off"
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.log), "-w", "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def remove(self) -> None:
        try:
            self.stop()
        except subprocess.CalledProcessError:
            pass  # not running
        shutil.rmtree(self.folder, ignore_errors=True)
