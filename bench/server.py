"""The real server (`manage.py serve`) on a free loopback port, for the benchmark and the load test."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running(
    database_url: str, workers: int = 2, *, args: tuple[str, ...] = (), log: Path | None = None, **env: str
) -> Iterator[int]:
    """Start `serve` against ``database_url`` (``env``: more settings; ``args``: more options; ``log``: a file
    for its output), yield its port once it answers; stop it."""
    port = free_port()
    output = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115  (closed below)
    server = subprocess.Popen(
        [sys.executable, "manage.py", "serve", "--port", str(port), "--workers", str(workers), "--no-demo-admin",
         *args],
        cwd=ROOT, env={**os.environ, **env, "DATABASE_URL": database_url},
        stdout=output, stderr=output, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"serve did not start on port {port}") from None
                time.sleep(0.5)
        yield port
    finally:
        os.killpg(server.pid, signal.SIGINT)
        server.wait(timeout=30)
        if log:
            output.close()
