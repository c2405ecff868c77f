"""Batched backfills: how a migration rewrites every observation without locking the table.

Migration 0009 rewrote every row in one transaction (27 minutes at 10,000,000 observations, the
rows locked throughout, the replica's replay behind by as much). A backfill instead runs in a
migration with ``atomic = False``, as a ``RunPython`` of :func:`batched_update`: one short
transaction per range of ids, so writers wait at most one batch, replicas replay as it goes, and
an interrupted run resumes where it stopped (the ``WHERE`` skips rows already done)::

    class Migration(migrations.Migration):
        atomic = False
        operations = [
            migrations.AddField(...),  # nullable, or with a database default: no rewrite
            migrations.RunPython(batched_update("stats_observation", "new_col = old_col * 2", "new_col IS NULL"),
                                 migrations.RunPython.noop),
        ]

Add constraints that need the backfilled values (NOT NULL, CHECK ... NOT VALID then VALIDATE) in
a later migration.
"""

from __future__ import annotations

from collections.abc import Callable

from django.db import transaction

DEFAULT_BATCH = 10_000


def backfill(connection, table: str, assignments: str, where: str = "TRUE", batch: int = DEFAULT_BATCH) -> int:
    """``UPDATE table SET assignments WHERE where``, one transaction per ``batch`` ids; the rows changed."""
    if connection.in_atomic_block:
        raise RuntimeError(
            f"backfill of {table} inside a transaction would lock every row until the end: "
            "set atomic = False on the migration"
        )
    quoted = connection.ops.quote_name(table)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT min(id), max(id) FROM {quoted}")
        low, high = cursor.fetchone()
    changed = 0
    if low is None:
        return changed
    for start in range(low, high + 1, batch):
        with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {quoted} SET {assignments} WHERE id >= %s AND id < %s AND ({where})", [start, start + batch]
            )
            changed += cursor.rowcount
    return changed


def batched_update(table: str, assignments: str, where: str = "TRUE", batch: int = DEFAULT_BATCH) -> Callable:
    """A ``RunPython`` function running :func:`backfill` on the migration's database."""

    def run(apps, schema_editor) -> None:
        backfill(schema_editor.connection, table, assignments, where, batch)

    return run
