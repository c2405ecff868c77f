"""The import service: validate every row, plan against the stored data, write all or nothing.

Admin imports (long and table shape), the CLI and the fixture loader all end here. An import is
all-or-nothing: every row is validated first and any error aborts it before anything is written;
the write itself runs in one transaction, serialized with other imports.
"""

from __future__ import annotations

import hashlib

import pghistory
import psycopg
from django.db import IntegrityError, transaction

from stats.lookups import CatalogLookup
from stats.models import ImportRecord
from stats.services.errors import ImportFailed, RowError
from stats.services.locking import import_lock
from stats.services.observations.edits import database_message, user_id
from stats.services.observations.planning import ImportResult, merge_printings, plan_import
from stats.services.observations.rows import ObservationRow, ValidRow
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
    - ``dry_run`` computes the same preview (new / changed / unchanged) and writes nothing.

    ``rows`` may be any iterable (a generator reading a file keeps memory down); it is read once.
    """
    options = options or {}
    if allow_changes is None:
        allow_changes = bool(reason.strip())
    validate = RowValidator(CatalogLookup.load()).validate
    valid: list[ValidRow] = []
    errors: list[RowError] = []
    count = 0
    for row in rows:
        count += 1
        ok, row_errors = validate(row)
        if ok is not None:
            valid.append(ok)
        else:
            errors.extend(row_errors)
    primaries, restated, merge_errors = merge_printings(valid, merge_restatements)
    del valid
    errors.extend(merge_errors)
    record_fields = dict(
        user=user if getattr(user, "is_authenticated", False) else None,
        channel=channel,
        shape=shape,
        file_name=file_name,
        checksum=checksum,
        rows=count,
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
    if errors or dry_run:
        plan = plan_import(primaries, restated, allow_changes, ImportResult(rows=count, dry_run=dry_run), keep_channel)
        if errors or plan.errors:
            raise failed(errors + plan.errors)
        plan.result.record = ImportRecord.objects.create(
            status=ImportRecord.Status.DRY_RUN,
            new=plan.result.new,
            changed=plan.result.changed,
            unchanged=plan.result.unchanged,
            **record_fields,
        )
        return plan.result
    try:
        with transaction.atomic():
            # Imports are serialized: the plan (what is new, what changes) is made under the lock,
            # so two imports never interleave or decide on stale data.
            import_lock()
            plan = plan_import(primaries, restated, allow_changes, ImportResult(rows=count), keep_channel)
            if plan.errors:
                raise ImportFailed(plan.errors)
            result = plan.result
            result.record = ImportRecord.objects.create(
                status=ImportRecord.Status.COMMITTED,
                new=result.new,
                changed=result.changed,
                unchanged=result.unchanged,
                **record_fields,
            )
            if plan.to_create or plan.to_update:
                context = {"user": user_id(user), "reason": reason or "import", "channel": channel}
                with pghistory.context(**context, import_record=result.record.id):
                    write_plan(plan, progress)
    except ImportFailed as exc:
        raise failed(exc.errors) from None
    except (IntegrityError, psycopg.errors.IntegrityError) as exc:
        raise failed([RowError(None, None, f"the database refused the import: {database_message(exc)}")]) from exc
    return result


def file_checksum(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
