"""Writing a planned import: every row COPYed into a staging table, then merged in one statement each.

The observations table checks its rules once per statement (migration 0012), so the new facts go in
with one INSERT ... SELECT and the changed ones with one UPDATE ... FROM, however many there are; the
breakdown's derived columns are computed per distinct breakdown by the database's own function.
New rows enter as not preferred: the database chooses each fact's preferred figure (migration 0010).
"""

from __future__ import annotations

from django.db import connection
from django.utils import timezone

from stats.models import Restatement
from stats.services.errors import ImportFailed, RowError
from stats.services.observations.planning import ImportPlan, existing_facts
from stats.services.observations.rows import COMPARED_FIELDS, FIELD_NAMES

STAGING = "import_staging"

# The staging table: the observation to change (none for a new one), the fact's ids, the row's values.
STAGING_COLUMNS = {
    "observation_id": "bigint", "indicator_id": "bigint", "source_id": "bigint", "member_ids": "bigint[]",
    "year": "integer", "period": "text", "since": "integer", "as_of": "date", "value": "numeric",
    "value_text": "text", "qualifier": "text", "quote": "text", "table": "text", "flag": "text", "note": "text",
    "corrected_value": "numeric", "correction_reason": "text",
}  # fmt: skip
if tuple(STAGING_COLUMNS)[4:] != FIELD_NAMES:
    raise ImportError("the staging table's value columns must follow FIELD_NAMES (a ValidRow's values)")
INSERTED = [c for c in STAGING_COLUMNS if c != "observation_id"]


def _quoted(columns) -> str:
    return ", ".join(f'"{c}"' for c in columns)


def _copy_staging(rows, observation_ids) -> None:
    """COPY rows into the staging table; ``observation_ids`` gives each row's observation (or None)."""
    with (
        connection.cursor() as cursor,
        cursor.cursor.copy(f"COPY {STAGING} ({_quoted(STAGING_COLUMNS)}) FROM STDIN") as copy,
    ):
        write_row = copy.write_row
        # member_ids as the array's text form, made once per breakdown (COPY's text format reads it).
        arrays: dict[tuple, str] = {}
        for observation_id, row in zip(observation_ids, rows, strict=True):
            member_ids = row.member_ids
            array = arrays.get(member_ids)
            if array is None:
                array = arrays[member_ids] = "{" + ",".join(str(int(i)) for i in member_ids) + "}"
            write_row((observation_id, row.indicator_id, row.source_id, array, *row.values))


def write_plan(plan: ImportPlan, progress) -> None:
    """Write the plan's new and changed observations and their restatements (inside the import's transaction).

    ``progress(n)`` is told the rows written after each statement that writes observations.
    """
    to_create, to_update = plan.to_create, plan.to_update
    now = timezone.now()
    with connection.cursor() as cursor:
        columns = ", ".join(f'"{c}" {t}' for c, t in STAGING_COLUMNS.items())
        cursor.execute(f"CREATE TEMP TABLE {STAGING} ({columns}) ON COMMIT DROP")
        _copy_staging(to_create, (None for _ in to_create))
        _copy_staging((row for _, row in to_update), (oid for oid, _ in to_update))
        if to_create:
            cursor.execute(
                f"""
                INSERT INTO stats_observation ({_quoted(INSERTED)}, dimension_ids, member_order,
                                               is_preferred, version, created_at, updated_at)
                SELECT {", ".join(f's."{c}"' for c in INSERTED)}, b.dimension_ids, b.member_order, false, 1, %s, %s
                  FROM {STAGING} s
                  JOIN (SELECT d.member_ids AS breakdown, f.dimension_ids, f.member_order
                          FROM (SELECT DISTINCT member_ids FROM {STAGING} WHERE observation_id IS NULL) d
                          CROSS JOIN LATERAL stats_breakdown(d.member_ids) f) b ON b.breakdown = s.member_ids
                 WHERE s.observation_id IS NULL
                """,
                [now, now],
            )
            if progress:
                progress(len(to_create))
        if to_update:
            _check_still_as_planned(cursor, plan)
            assignments = ", ".join(f'"{c}" = s."{c}"' for c in COMPARED_FIELDS)
            cursor.execute(
                f"""
                UPDATE stats_observation o SET {assignments}, version = o.version + 1, updated_at = %s
                  FROM {STAGING} s WHERE s.observation_id = o.id
                """,
                [now],
            )
            if progress:
                progress(len(to_update))
        cursor.execute(f"DROP TABLE {STAGING}")
    if plan.new_restatements:
        ids = {key: found[0] for key, found in existing_facts(plan.new_restatements).items()}
        Restatement.objects.bulk_create(
            [
                Restatement(observation_id=ids[key], **values)
                for key, rows in plan.new_restatements.items()
                for values in rows
            ]
        )
    if plan.restatement_writes:
        Restatement.objects.filter(observation_id__in=list(plan.restatement_writes)).delete()
        Restatement.objects.bulk_create(
            [
                Restatement(observation_id=oid, **values)
                for oid, rows in plan.restatement_writes.items()
                for values in rows
            ]
        )


def _check_still_as_planned(cursor, plan: ImportPlan) -> None:
    """Lock the observations the import changes and refuse when one was edited since the plan was made:
    an edit saved meanwhile is never overwritten."""
    cursor.execute(
        f"SELECT o.id, o.version FROM stats_observation o JOIN {STAGING} s ON s.observation_id = o.id "
        "ORDER BY o.id FOR UPDATE OF o"
    )
    for observation_id, version in cursor.fetchall():
        planned = plan.versions[observation_id]
        if version != planned:
            row = next(r for oid, r in plan.to_update if oid == observation_id)
            message = (
                f"observation #{observation_id} was changed by someone else while this import ran "
                f"(version {version}, planned on {planned}); nothing was imported: preview the file again"
            )
            raise ImportFailed([RowError(row.row, None, message)])
