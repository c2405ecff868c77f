"""The import service: validate every row, plan against the stored data, write all or nothing.

Admin imports (long and table shape), the CLI and the fixture loader all end here. An import is
all-or-nothing and runs in one transaction: each row is validated as it is read and COPYed into a
staging table (nothing kept per row in memory), then duplicates, new, changed and unchanged figures
are worked out in SQL against it under the import lock, and merged; any error rolls it all back.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pghistory
import psycopg
from django.db import IntegrityError, connection, transaction

from stats.lookups import CatalogLookup
from stats.models import Flag, ImportRecord
from stats.services.errors import ImportFailed, RowError
from stats.services.locking import import_lock
from stats.services.observations import staging
from stats.services.observations.checks import (
    checked_indicators,
    mismatch_keys,
    sum_mismatch_errors,
    sum_mismatches,
    years_outside_edition,
    years_outside_edition_errors,
)
from stats.services.observations.edits import database_message, user_id
from stats.services.observations.planning import ImportPlan, ImportResult, as_stored, merge_duplicates, plan_import
from stats.services.observations.rows import ObservationRow
from stats.services.observations.validation import RowValidator
from stats.services.observations.writing import write_plan


def observations_import(
    *,
    rows: list[ObservationRow],
    user=None,
    reason: str = "",
    channel: str = "cli",
    shape: str = ImportRecord.Shape.LONG,
    file_name: str = "",
    checksum: str = "",
    options: dict | None = None,
    dry_run: bool = False,
    merge_restatements: bool = False,
    allow_changes: bool | None = None,
    keep_edits: bool = False,
    sum_mismatch_note: str = "",
    confirm_years_outside_edition: bool = False,
    progress=None,
) -> ImportResult:
    """Validate ``rows`` and write them as observations, all or nothing.

    - Every row is validated first (catalog codes, figures, units); any error raises
      :class:`ImportFailed` listing all of them and nothing is written.
    - Rows for facts that already exist update them when they differ; that needs a ``reason``
      (``allow_changes`` defaults to "a reason was given").
    - ``merge_restatements`` (published reports): several rows for one fact become one
      observation and its restatements; otherwise they are duplicate-row errors.
    - ``keep_edits``: a stored figure last changed through another channel than this import's
      (staff corrections, for the published reports) is left as it is and listed in ``kept``.
    - A printed total whose parts do not add up (and that no flag or correction explains) refuses
      the write, unless ``sum_mismatch_note`` says why it is stored as printed: its figures are then
      flagged as a sum mismatch with that note. So ``check_data`` passes after any import.
    - Figures for a year other than their source's edition refuse the write unless
      ``confirm_years_outside_edition``.
    - ``dry_run`` computes the same preview (new / changed / unchanged, the mismatches and years to
      settle) and writes nothing.

    ``rows`` may be any iterable (a generator reading a file keeps memory down); it is read once.
    """
    options = dict(options or {})
    if sum_mismatch_note.strip():
        options["sum_mismatch_note"] = sum_mismatch_note.strip()
    if confirm_years_outside_edition:
        options["confirm_years_outside_edition"] = True
    if allow_changes is None:
        allow_changes = bool(reason.strip())
    lookup = CatalogLookup.load()
    validate = RowValidator(lookup).validate
    note = sum_mismatch_note.strip()
    record_fields = dict(
        user=user if getattr(user, "is_authenticated", False) else None,
        channel=channel,
        shape=shape,
        file_name=file_name,
        checksum=checksum,
        rows=0,
        reason=reason,
        options=options,
    )

    def failed(all_errors: list[RowError]) -> ImportFailed:
        all_errors = list(dict.fromkeys(all_errors))  # a bad row label is one error, not one per cell
        all_errors.sort(key=lambda e: (str(type(e.row)), e.row if e.row is not None else 0))
        record = ImportRecord.objects.create(
            status=ImportRecord.Status.FAILED, errors=[str(e) for e in all_errors[:1000]], **record_fields
        )
        return ImportFailed(all_errors, record)

    keep_channel = channel if keep_edits else None

    def settled_plan(count: int, restated: dict) -> ImportPlan:
        """The plan, with mismatching totals flagged when a note allows it, and what is left to settle."""
        plan = plan_import(restated, allow_changes, ImportResult(rows=count, dry_run=dry_run), keep_channel)
        if plan.errors:
            return plan
        checked = checked_indicators(staging.breakdown_sizes(), lookup)
        unexplained, explained, row_of = _sum_mismatches(checked)
        if unexplained and note:
            keys = mismatch_keys(unexplained, row_of)
            staging.flag([seq for key, seq in row_of.seqs.items() if key in keys], Flag.SUM_MISMATCH, note)
            result = ImportResult(rows=count, dry_run=dry_run, flagged=len(keys))
            plan = plan_import(restated, allow_changes, result, keep_channel)
            if plan.errors:
                return plan
            unexplained, explained, row_of = _sum_mismatches(checked)
        result = plan.result
        result.mismatches, result.explained_mismatches = unexplained, explained
        result.years_outside_edition = years_outside_edition(lookup)
        if not dry_run:
            plan.errors += sum_mismatch_errors(unexplained, row_of)
            if not confirm_years_outside_edition:
                plan.errors += years_outside_edition_errors(result.years_outside_edition)
        return plan

    def _sum_mismatches(checked: set[int]):
        """The checks on the staged rows of the ``checked`` indicators, as they would be stored."""
        if not checked:
            return [], [], _RowsOf()
        seqs, rows = {}, []
        for seq, row, stored in staging.staged_rows("s.indicator_id = ANY (%s)", [list(checked)]):
            row = as_stored(row, stored)
            rows.append(row)
            seqs[row.key] = seq
        unexplained, explained, facts = sum_mismatches(rows, lookup, checked)
        return unexplained, explained, _RowsOf(facts, seqs)

    try:
        with transaction.atomic():
            staging.create()
            count, errors = staging.fill(rows, validate)
            record_fields["rows"] = count
            if not (errors or dry_run):
                # Imports are serialized: the plan (what is new, what changes) is made under the lock,
                # so two imports never interleave or decide on stale data.
                import_lock()
            restated, merge_errors = merge_duplicates(merge_restatements)
            errors += merge_errors
            plan = settled_plan(count, restated)
            if errors or plan.errors:
                raise ImportFailed(errors + plan.errors)
            result = plan.result
            if dry_run:
                raise _DryRun(result)  # nothing written: the staging table goes with the rollback
            result.record = ImportRecord.objects.create(
                status=ImportRecord.Status.COMMITTED,
                new=result.new,
                changed=result.changed,
                unchanged=result.unchanged,
                **record_fields,
            )
            if result.new or plan.to_update:
                context = {"user": user_id(user), "reason": reason or "import", "channel": channel}
                with pghistory.context(**context, import_record=result.record.id):
                    write_plan(plan, progress)
            staging.drop()
            if result.new + result.changed >= ANALYZED_AFTER:
                transaction.on_commit(_analyze)
    except staging.ReadFailed as exc:
        raise exc.failed from None
    except _DryRun as dry:
        result = dry.result
        result.record = ImportRecord.objects.create(
            status=ImportRecord.Status.DRY_RUN,
            new=result.new,
            changed=result.changed,
            unchanged=result.unchanged,
            **record_fields,
        )
        return result
    except ImportFailed as exc:
        raise failed(exc.errors) from None
    except (IntegrityError, psycopg.errors.IntegrityError) as exc:
        raise failed([RowError(None, None, f"the database refused the import: {database_message(exc)}")]) from exc
    return result


# An import that writes this many figures analyses the table after its commit, so the planner's
# statistics (and the queries' plans) stay right after a large load, and moves the breakdown GIN
# index's pending entries into the index: a manual ANALYZE leaves them, and until autovacuum comes every
# query through that index reads the whole pending list (about 56,000 entries after 1,000,000 rows).
ANALYZED_AFTER = 50_000


def _analyze() -> None:
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE stats_observation")
        cursor.execute("SELECT gin_clean_pending_list('observation_member_ids_gin'::regclass)")


class _DryRun(Exception):
    """Leaves the import's transaction without writing anything (a preview)."""

    def __init__(self, result: ImportResult) -> None:
        super().__init__("dry run")
        self.result = result


class _RowsOf(dict):
    """The checked facts' rows (Fact -> ValidRow), and each row's place in the staging table (key -> seq)."""

    def __init__(self, facts: dict | None = None, seqs: dict | None = None) -> None:
        super().__init__(facts or {})
        self.seqs = seqs or {}


def file_checksum(data: bytes | Path) -> str:
    """SHA-256 of a file's content (given as bytes, or a path read in chunks)."""
    if not isinstance(data, Path):
        return hashlib.sha256(data).hexdigest()
    with data.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()
