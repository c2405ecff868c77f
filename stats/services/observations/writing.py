"""Writing a planned import from its staging table, in one statement each for the new and the changed figures.

The observations table checks its rules once per statement (migration 0012), so the new facts go in
with one INSERT ... SELECT and the changed ones with one UPDATE ... FROM, however many there are; the
breakdown's derived columns are computed per distinct breakdown by the database's own function.
The database keeps each fact's preferred figure (migrations 0010 and 0015).
"""

from __future__ import annotations

from django.db import connection
from django.utils import timezone

from stats.models import Restatement
from stats.services.errors import ImportFailed, RowError
from stats.services.observations import staging
from stats.services.observations.planning import ImportPlan, existing_facts
from stats.services.observations.rows import COMPARED_FIELDS, COMPARED_INDEX, FIELD_NAMES


def _quoted(columns) -> str:
    return ", ".join(f'"{c}"' for c in columns)


CHANGES = "import_changes"  # the changed figures: observation id and the values they take
CHANGE_COLUMNS = {"observation_id": "bigint", **{c: staging.COLUMNS[c] for c in COMPARED_FIELDS}}
INSERTED = ["indicator_id", "source_id", "member_ids", *FIELD_NAMES]
PREFERRED_FACT = ("indicator_id", "year", "period", "since", "member_ids")  # one preferred figure per fact


def write_plan(plan: ImportPlan, progress) -> None:
    """Write the plan's new and changed observations and their restatements (inside the import's transaction).

    The new ones are the staged rows no stored figure matches, merged in one INSERT ... SELECT in the
    order of the main indexes. A new figure whose fact has no other figure, stored or staged, enters as
    preferred (``stats.preferred_given``, migration 0015: the database still checks it), so no row is
    written twice; the others enter unpreferred and the database ranks their facts.
    ``progress(n)`` is told the rows written after each statement that writes observations.
    """
    now = timezone.now()
    new = plan.result.new
    with connection.cursor() as cursor:
        if new:
            cursor.execute("SET LOCAL stats.preferred_given = on")
            fact = ", ".join(f"s.{c}" for c in PREFERRED_FACT)
            stored = " AND ".join(
                f"o.{c} IS NOT DISTINCT FROM s.{c}" if c == "since" else f"o.{c} = s.{c}" for c in PREFERRED_FACT
            )
            # A fact's stored figures include its preferred one: one join with the preferred rows tells.
            cursor.execute(
                f"""
                INSERT INTO stats_observation ({_quoted(INSERTED)}, dimension_ids, member_order,
                                               is_preferred, version, created_at, updated_at)
                SELECT {", ".join(f's."{c}"' for c in INSERTED)}, b.dimension_ids, b.member_order,
                       s.printings = 1 AND o.id IS NULL, 1, %s, %s
                  FROM (SELECT s.*, count(*) OVER (PARTITION BY {fact}) AS printings
                          FROM {staging.STAGING} s
                         WHERE NOT EXISTS (SELECT 1 FROM {staging.MATCHED} m WHERE m.seq = s.seq)) s
                  JOIN (SELECT d.member_ids AS breakdown, f.dimension_ids, f.member_order
                          FROM (SELECT DISTINCT member_ids FROM {staging.STAGING}) d
                          CROSS JOIN LATERAL stats_breakdown(d.member_ids) f) b ON b.breakdown = s.member_ids
                  LEFT JOIN stats_observation o ON o.is_preferred AND {stored}
                """,
                [now, now],
            )
            cursor.execute("SET LOCAL stats.preferred_given = off")
            if progress:
                progress(new)
        if plan.to_update:
            columns = ", ".join(f'"{c}" {t}' for c, t in CHANGE_COLUMNS.items())
            cursor.execute(f"CREATE TEMP TABLE {CHANGES} ({columns}) ON COMMIT DROP")
            with cursor.cursor.copy(f"COPY {CHANGES} ({_quoted(CHANGE_COLUMNS)}) FROM STDIN") as copy:
                for observation_id, row in plan.to_update:
                    values = row.values
                    copy.write_row((observation_id, *(values[i] for i in COMPARED_INDEX)))
            _check_still_as_planned(cursor, plan)
            assignments = ", ".join(f'"{c}" = s."{c}"' for c in COMPARED_FIELDS)
            cursor.execute(
                f"""
                UPDATE stats_observation o SET {assignments}, version = o.version + 1, updated_at = %s
                  FROM {CHANGES} s WHERE s.observation_id = o.id
                """,
                [now],
            )
            cursor.execute(f"DROP TABLE {CHANGES}")
            if progress:
                progress(len(plan.to_update))
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
        f"SELECT o.id, o.version FROM stats_observation o JOIN {CHANGES} s ON s.observation_id = o.id "
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
