"""How writers share the warehouse: imports one at a time, edits never stuck behind an import.

- Imports are serialized by a transaction-level advisory lock (two never interleave).
- A long write (an import, the published reports) bumps the data version at commit, not at its
  first statement: otherwise it would hold the version row's lock for its whole transaction and
  every correction would wait for it (or deadlock with it).
- Edits wait for a lock at most ``EDIT_LOCK_TIMEOUT``; then, and on a deadlock, the editor is told
  to try again (:class:`BusyError`) instead of waiting for minutes or seeing an error page.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from django.db import OperationalError, connection, transaction

from stats.services.errors import BusyError

# Serializes imports: two at once never interleave (pg_advisory_xact_lock key).
IMPORT_LOCK_KEY = 7_240_001
# How long an edit waits for a row an import (or another edit) holds: under the 5 s an editor waits.
EDIT_LOCK_TIMEOUT = "4s"


def import_lock() -> None:
    """Wait for any other import to commit, then bump the data version only at this one's commit."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [IMPORT_LOCK_KEY])
    data_version_at_commit()


def data_version_at_commit() -> None:
    """This transaction's writes bump the data version once, at commit (triggers of migration 0013)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('stats.data_version_at_commit', 'on', true)")


def import_running() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND classid = 0 AND objid = %s AND objsubid = 1)",
            [IMPORT_LOCK_KEY],
        )
        return cursor.fetchone()[0]


@contextmanager
def edit_transaction() -> Iterator[None]:
    """``transaction.atomic()`` for an edit: waits at most ``EDIT_LOCK_TIMEOUT`` for a lock.

    A lock timeout or a deadlock rolls the edit back and becomes a :class:`BusyError` saying why.
    """
    try:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SELECT set_config('lock_timeout', %s, true)", [EDIT_LOCK_TIMEOUT])
            yield
    except OperationalError as exc:
        if not isinstance(exc.__cause__, psycopg.errors.LockNotAvailable | psycopg.errors.DeadlockDetected):
            raise
        if import_running():
            raise BusyError("an import is being written; try again in a moment") from exc
        raise BusyError("someone else is saving this figure right now; try again in a moment") from exc
