"""The benchmark's own database, beside the development one, on the same server."""

from __future__ import annotations

import os
from urllib.parse import urlsplit, urlunsplit

BENCH_DB = "ncmec_bench"


def configure(name: str = BENCH_DB, fresh: bool = False) -> str:
    """Point Django at the benchmark database ``name`` (created if missing, or anew); return its URL.

    Must run before django.setup(). With DATABASE_URL set, the benchmark uses a database of the
    same name on that server; without it, the embedded server.
    """
    import psycopg

    base = os.environ.get("DATABASE_URL", "").strip()
    if not base:
        from ncmec import localdb

        base = localdb.ensure_running().url
    parts = urlsplit(base)
    url = urlunsplit(parts._replace(path=f"/{name}"))
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        if fresh:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
    os.environ.update(
        DATABASE_URL=url,
        DJANGO_SETTINGS_MODULE="ncmec.settings",
        SECRET_KEY=os.environ.get("SECRET_KEY") or "benchmark-only-secret-key-not-for-production-use-0123456789",
        HTTPS="0",
        DEBUG="0",
    )
    return url
