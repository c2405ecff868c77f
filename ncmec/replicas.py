"""Anonymous reads on PostgreSQL streaming replicas (``DATABASE_REPLICA_URLS``), everything else on the primary.

The router sends a read to a replica only inside :func:`reading_from`, which the GraphQL view opens
for an anonymous read query after :func:`choose` picked a healthy replica; writes, staff sessions,
the admin and commands never enter it and use the primary. The view reads the data version on the
same server as the data, in one :func:`snapshot` with it, so a cached answer is of exactly the
version in its key, however far a replica lags.

A replica is healthy when it answers, is streaming from the primary and its replay is within
``REPLICA_MAX_LAG_SECONDS``; the verdict is remembered for a second per process, and a replica
that fails a request is skipped at once (:func:`mark_down`).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from django.conf import settings
from django.db import DatabaseError, connections, transaction

logger = logging.getLogger(__name__)

PRIMARY = "default"
CHECK_EVERY_S = 1.0
# Replay lag in seconds: 0 when everything received is replayed; NULL when not streaming.
LAG_SQL = """
SELECT CASE
  WHEN NOT pg_is_in_recovery() THEN 0
  WHEN NOT EXISTS (SELECT 1 FROM pg_stat_wal_receiver WHERE status = 'streaming') THEN NULL
  WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
  ELSE COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()), 0)
END
"""

_reading_from: ContextVar[str | None] = ContextVar("ncmec_reading_from", default=None)
_health: dict[str, tuple[float, bool]] = {}  # alias -> (checked at, healthy)
_lock = threading.Lock()


def aliases() -> list[str]:
    return [alias for alias in settings.DATABASES if alias != PRIMARY]


def lag(alias: str) -> float | None:
    """The replica's replay lag in seconds; None when it is not streaming from the primary."""
    with connections[alias].cursor() as cursor:
        cursor.execute(LAG_SQL)
        (seconds,) = cursor.fetchone()
    return None if seconds is None else float(seconds)


def is_healthy(alias: str) -> bool:
    now = time.monotonic()
    checked = _health.get(alias)
    if checked and now - checked[0] < CHECK_EVERY_S:
        return checked[1]
    with _lock:
        checked = _health.get(alias)
        if checked and now - checked[0] < CHECK_EVERY_S:
            return checked[1]
        try:
            seconds = lag(alias)
        except DatabaseError as exc:
            connections[alias].close()
            healthy, reason = False, f"unreachable ({str(exc).strip().splitlines()[0] if str(exc).strip() else exc})"
        else:
            healthy = seconds is not None and seconds <= settings.REPLICA_MAX_LAG_SECONDS
            reason = "not streaming" if seconds is None else f"{seconds:.1f} s behind"
        was = checked[1] if checked else True
        if was != healthy:
            log = logger.info if healthy else logger.warning
            log("replica %s %s", alias, "is back in use" if healthy else f"skipped for the primary: {reason}")
        _health[alias] = (time.monotonic(), healthy)
        return healthy


def mark_down(alias: str, exc: Exception) -> None:
    """A request failed on ``alias``: skip it until the next check."""
    connections[alias].close()
    with _lock:
        _health[alias] = (time.monotonic(), False)
    logger.warning("replica %s failed a read (%s); reads go to the primary", alias, str(exc).strip()[:200])


def choose() -> str:
    """A healthy replica for an anonymous read, or the primary when none is."""
    healthy = [alias for alias in aliases() if is_healthy(alias)]
    return random.choice(healthy) if healthy else PRIMARY


class Reading:
    """Where a request reads, and whether a query there failed (then the primary answers again)."""

    def __init__(self, alias: str) -> None:
        self.alias = alias
        self.failed: Exception | None = None

    def __call__(self, execute, sql, params, many, context):  # a Django execute wrapper
        try:
            return execute(sql, params, many, context)
        except DatabaseError as exc:
            self.failed = exc
            raise


@contextmanager
def reading_from(alias: str) -> Iterator[Reading]:
    """Route this request's reads to ``alias`` (the primary keeps every write)."""
    reading = Reading(alias)
    token = _reading_from.set(alias)
    try:
        with connections[alias].execute_wrapper(reading):
            yield reading
    finally:
        _reading_from.reset(token)


@contextmanager
def snapshot(alias: str) -> Iterator[bool]:
    """One read-only REPEATABLE READ transaction on ``alias``: the data version and the data read in it
    are of one moment (without it, a write between them puts newer figures under an older version).
    Yields whether it opened one (not inside a transaction already, as in tests)."""
    connection = connections[alias]
    if connection.in_atomic_block:
        yield False
        return
    with transaction.atomic(using=alias):
        with connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        yield True


def current() -> str:
    return _reading_from.get() or PRIMARY


class ReadReplicaRouter:
    """Reads inside :func:`reading_from` go to its replica; all else to the primary."""

    def db_for_read(self, model, **hints) -> str:
        return current()

    def db_for_write(self, model, **hints) -> str:
        return PRIMARY

    def allow_relation(self, obj1, obj2, **hints) -> bool:
        return True  # one database, copied

    def allow_migrate(self, db, app_label, model_name=None, **hints) -> bool:
        return db == PRIMARY
