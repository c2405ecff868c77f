"""Real engines started from processes, for the topology tests and `python -m bench --topology`.

A `redis-server` (Debian's package) on a free loopback port, and a PostgreSQL streaming replica of
the embedded cluster made with the wheel's own `pg_basebackup`. Both can be stopped and started
again mid-run; waits poll with a deadline.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.server import free_port
from ncmec import localdb

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


def wait_for(condition: Callable[[], bool], what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up after {seconds:.0f} s waiting for {what}")
        time.sleep(0.1)


def answers(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


class Redis:
    """One redis-server without persistence; ``stop``/``start`` keep its port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--maxmemory", "256mb", "--maxmemory-policy", "allkeys-lru"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_for(lambda: answers(self.port), f"redis-server on port {self.port}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=30)
            self.process = None


@contextmanager
def redis() -> Iterator[Redis]:
    server = Redis()
    server.start()
    try:
        yield server
    finally:
        server.stop()


class Replica:
    """A hot standby of the embedded cluster, streaming from it, in a temporary folder."""

    def __init__(self, primary: localdb.LocalDatabase) -> None:
        self.primary = primary
        self.root = Path(tempfile.mkdtemp(prefix="ncmec-replica-"))
        self.data_dir = self.root / "data"
        self.port = free_port()

    def url(self, database: str) -> str:
        return f"postgresql://{localdb.SUPERUSER}@:{self.port}/{database}?host={self.root}"

    def create(self) -> None:
        self.root.chmod(0o755)
        localdb._prepare_for_system_user(self.root)
        primary_port = str(localdb._postmaster_port(self.primary.data_dir))
        subprocess.run(
            [localdb.pg_tool("pg_basebackup"), "-D", str(self.data_dir), "-R", "-X", "stream", "-c", "fast",
             "-h", str(self.primary.socket_dir), "-p", primary_port, "-U", localdb.SUPERUSER],
            check=True, capture_output=True, **localdb._run_as(),
        )  # fmt: skip

    def start(self) -> None:
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} -c hot_standby=on"
        options += " -c max_connections=200"  # a standby needs at least the primary's
        subprocess.run(
            [localdb.pg_tool("pg_ctl"), "-D", str(self.data_dir), "-l", str(self.root / "server.log"), "-w",
             "-t", "60", "-o", options, "start"],
            check=True, capture_output=True, **localdb._run_as(),
        )  # fmt: skip

    def stop(self) -> None:
        if localdb.is_running(self.data_dir):
            subprocess.run(
                [localdb.pg_tool("pg_ctl"), "-D", str(self.data_dir), "-w", "-m", "fast", "stop"],
                check=True, capture_output=True, **localdb._run_as(),
            )  # fmt: skip

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def replayed(self, database: str, primary_url: str) -> bool:
        """Whether the replica has replayed everything the primary has committed so far."""
        import psycopg

        with psycopg.connect(primary_url, autocommit=True) as primary:
            (lsn,) = primary.execute("SELECT pg_current_wal_lsn()").fetchone()
        with psycopg.connect(self.url(database), autocommit=True) as standby:
            (done,) = standby.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", [lsn]).fetchone()
        return bool(done)


@contextmanager
def replica(primary: localdb.LocalDatabase | None = None) -> Iterator[Replica]:
    standby = Replica(primary or localdb.ensure_running())
    try:
        standby.create()
        standby.start()
        yield standby
    finally:
        standby.remove()


def have_tools() -> str | None:
    """Why the topology cannot run here (None when it can)."""
    if not os.path.exists(REDIS_SERVER):
        return "redis-server is not installed (apt-get install redis-server)"
    return None
