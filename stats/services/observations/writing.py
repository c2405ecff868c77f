"""Writing a planned import: new observations by COPY, changes in batches.

New rows enter as not preferred: the database chooses each fact's preferred figure (migration 0010).
"""

from __future__ import annotations

from django.db import connection
from django.utils import timezone

from stats.models import Observation, Restatement
from stats.services.errors import ImportFailed, RowError
from stats.services.observations.planning import ImportPlan, existing_facts
from stats.services.observations.rows import COMPARED_FIELDS, FIELD_NAMES, ValidRow

BATCH_SIZE = 2000
COPY_BATCH_SIZE = 50_000

COPY_COLUMNS = ("indicator_id", "source_id", "member_ids", "year", "period", "since", "as_of", "value", "value_text",
                "qualifier", "quote", "table", "flag", "note", "corrected_value", "correction_reason", "is_preferred",
                "version", "created_at", "updated_at")  # fmt: skip


def _copy_new(batch: list[ValidRow]) -> None:
    """Insert new observations with COPY: the database's triggers still check every row."""
    now = timezone.now()
    columns = ", ".join(f'"{c}"' for c in COPY_COLUMNS)
    with connection.cursor() as cursor:
        # pghistory sets its context (who, why) by prefixing statements it does not skip; plain SELECTs
        # are skipped, COPY bypasses Django's cursor: run one such statement first in this transaction.
        cursor.execute("WITH history_context AS (SELECT 1) SELECT 1")
        with cursor.cursor.copy(f"COPY stats_observation ({columns}) FROM STDIN") as copy:
            write_row = copy.write_row
            # member_ids as the array's text form, made once per breakdown (COPY's text format reads it).
            arrays: dict[tuple, str] = {}
            for row in batch:
                member_ids = row.member_ids
                array = arrays.get(member_ids)
                if array is None:
                    array = arrays[member_ids] = "{" + ",".join(str(int(i)) for i in member_ids) + "}"
                year, period, since, as_of, value, value_text, qualifier, quote, table, flag, note, corrected, why = (
                    row.values
                )
                write_row(
                    (row.indicator_id, row.source_id, array, year, period, since, as_of, value,
                     value_text, qualifier, quote, table, flag, note, corrected, why, False, 1, now, now)
                )  # fmt: skip


def write_plan(plan: ImportPlan, progress) -> None:
    to_create, to_update = plan.to_create, plan.to_update
    for start in range(0, len(to_create), COPY_BATCH_SIZE):
        batch = to_create[start : start + COPY_BATCH_SIZE]
        _copy_new(batch)
        if progress:
            progress(len(batch))
    if plan.new_restatements:
        ids = {key: found[0] for key, found in existing_facts(plan.new_restatements).items()}
        Restatement.objects.bulk_create(
            [
                Restatement(observation_id=ids[key], **values)
                for key, rows in plan.new_restatements.items()
                for values in rows
            ]
        )
    now = timezone.now()
    for start in range(0, len(to_update), BATCH_SIZE):
        batch = to_update[start : start + BATCH_SIZE]
        # Locked, and still as planned: an edit saved since the plan is never overwritten.
        observations = Observation.objects.select_for_update().in_bulk([observation_id for observation_id, _ in batch])
        changed = []
        for observation_id, row in batch:
            obs = observations[observation_id]
            if obs.version != plan.versions[observation_id]:
                raise ImportFailed([RowError(row.source_row.row, None, (
                    f"observation #{observation_id} was changed by someone else while this import ran "
                    f"(version {obs.version}, planned on {plan.versions[observation_id]}); nothing was imported: "
                    "preview the file again"))])  # fmt: skip
            for name, value in zip(FIELD_NAMES, row.values, strict=True):
                setattr(obs, name, value)
            obs.version += 1
            obs.updated_at = now
            changed.append(obs)
        Observation.objects.bulk_update(changed, [*COMPARED_FIELDS, "version", "updated_at"])
        if progress:
            progress(len(batch))
    if plan.restatement_writes:
        Restatement.objects.filter(observation_id__in=list(plan.restatement_writes)).delete()
        Restatement.objects.bulk_create(
            [
                Restatement(observation_id=oid, **values)
                for oid, rows in plan.restatement_writes.items()
                for values in rows
            ]
        )
