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
def running(database_url: str, workers: int = 2, *, args: tuple[str, ...] = (), log: Path | None = None,
            start_s: float = 180, **env: str) -> Iterator[int]:  # fmt: skip
    """Start `serve` against ``database_url`` (``env``: more settings; ``args``: more options), yield its port
    once it answers (within ``start_s`` seconds: migrations and collectstatic first, on a busy machine); stop it.

    ``log``: a file that receives the server's output (logs included); by default it is dropped.
    The per-client time budget is off unless ``env`` sets it: the bench's clients share one address.
    """
    port = free_port()
    output = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - closed below
    server = subprocess.Popen(
        [sys.executable, "manage.py", "serve", "--port", str(port), "--workers", str(workers), "--no-demo-admin",
         *args],
        cwd=ROOT, env={**os.environ, "GRAPHQL_RATE_BUDGET_MS": "0", **env, "DATABASE_URL": database_url},
        stdout=output, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + start_s
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


def serving_pid(port: int) -> int:
    """The process of the `serve` listening on ``port`` (with one worker, uvicorn serves in it)."""
    wanted = ["serve", "--port", str(port)]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                argv = (entry / "cmdline").read_bytes().decode().split("\0")
            except OSError:
                continue
            if any(argv[i : i + 3] == wanted for i in range(len(argv))):
                return int(entry.name)
    raise RuntimeError(f"no serve process on port {port}")
