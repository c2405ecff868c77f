"""Reverting a whole import: its history is one event group (the pghistory context tagged with the import).

Observations the import created are deleted; observations it changed get back the editable values
their previous history record holds. Set-based, so a million-row import reverts in a few statements,
and recorded in history like any change (its context names the import it reverts).
"""

from __future__ import annotations

from dataclasses import dataclass

import pghistory
from django.core.exceptions import ValidationError
from django.db import connection, transaction

from stats.models import ImportRecord
from stats.models.observations import EDITABLE_FIELDS
from stats.services.locking import import_lock
from stats.services.observations.edits import user_id

# The history records written by one import (its context's metadata names the ImportRecord).
IMPORT_EVENTS = """
    SELECT e.* FROM stats_observationevent e
      JOIN pghistory_context c ON c.id = e.pgh_context_id
     WHERE c.metadata @> jsonb_build_object('import_record', %s::bigint)
"""


@dataclass
class ImportReverted:
    deleted: int
    restored: int


def import_revert(import_record_id: int, reason: str, user=None, channel: str = "admin") -> ImportReverted:
    """Undo a committed import as a whole, or refuse (nothing changed) when it cannot be undone cleanly.

    Refused when a figure it wrote no longer holds what it wrote (changed or deleted afterwards:
    revert that first), so a revert never overwrites later work.
    """
    if not reason.strip():
        raise ValidationError({"reason": "say why the import is reverted"})
    with transaction.atomic():
        import_lock()  # a revert writes like an import: serialized with them, the version bumped at commit
        record = ImportRecord.objects.select_for_update().filter(pk=import_record_id).first()
        if record is None:
            raise ValidationError({"import": f"import #{import_record_id} does not exist"})
        if record.status != ImportRecord.Status.COMMITTED:
            raise ValidationError(
                {"import": f"import #{record.pk} is {record.get_status_display()}: nothing to revert"}
            )
        with connection.cursor() as cursor:
            current, written = (", ".join(f'{t}."{f}"' for f in EDITABLE_FIELDS) for t in ("o", "ev"))
            cursor.execute(
                f"""
                SELECT ev.pgh_obj_id FROM ({IMPORT_EVENTS}) ev LEFT JOIN stats_observation o ON o.id = ev.pgh_obj_id
                 WHERE o.id IS NULL OR ROW({current}) IS DISTINCT FROM ROW({written})
                 ORDER BY 1 LIMIT 11
                """,
                [record.pk],
            )
            later = [r[0] for r in cursor.fetchall()]
        if later:
            shown = ", ".join(f"#{i}" for i in later[:10]) + (" and more" if len(later) > 10 else "")
            raise ValidationError(
                {"import": f"observations {shown} were changed after import #{record.pk}; revert those changes first"}
            )
        context = {"user": user_id(user), "reason": reason, "channel": channel, "reverts_import": record.pk}
        restored_columns = ", ".join(f'"{f}" = p."{f}"' for f in EDITABLE_FIELDS)
        with pghistory.context(**context), connection.cursor() as cursor:
            cursor.execute(
                f"""
                CREATE TEMP TABLE import_reverted ON COMMIT DROP AS
                SELECT ev.pgh_id AS event_id, ev.pgh_obj_id AS observation_id, ev.pgh_label AS label, o.indicator_id
                  FROM ({IMPORT_EVENTS}) ev JOIN stats_observation o ON o.id = ev.pgh_obj_id
                """,
                [record.pk],
            )
            cursor.execute(
                f"""
                UPDATE stats_observation o SET {restored_columns}, version = o.version + 1, updated_at = now()
                  FROM (SELECT DISTINCT ON (r.observation_id) r.observation_id, prev.*
                          FROM import_reverted r
                          JOIN stats_observationevent prev ON prev.pgh_obj_id = r.observation_id
                         WHERE r.label = 'update' AND prev.pgh_id < r.event_id
                         ORDER BY r.observation_id, prev.pgh_id DESC) p
                 WHERE o.id = p.observation_id
                """
            )
            restored = cursor.rowcount
            cursor.execute(
                "DELETE FROM stats_restatement WHERE observation_id IN "
                "(SELECT observation_id FROM import_reverted WHERE label = 'insert')"
            )
            cursor.execute(
                "DELETE FROM stats_observation WHERE id IN "
                "(SELECT observation_id FROM import_reverted WHERE label = 'insert')"
            )
            deleted = cursor.rowcount
            cursor.execute("DROP TABLE import_reverted")
        record.status = ImportRecord.Status.REVERTED
        record.save(update_fields=["status"])
    return ImportReverted(deleted=deleted, restored=restored)
