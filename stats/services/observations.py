"""The one validated write path for observations.

Admin imports (long and table shape), the CLI, the fixture loader and GraphQL mutations all end
here. An import is all-or-nothing: every row is validated first and any error aborts it before
anything is written; the write itself runs in one transaction, serialized with other imports.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

import pghistory
import psycopg
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from stats.lookups import CatalogLookup, LookupFailed
from stats.models import (
    Flag,
    ImportRecord,
    Observation,
    Period,
    Qualifier,
    Restatement,
    Unit,
)
from stats.models.observations import EDITABLE_FIELDS
from stats.printed import ValueTextError, collapse_whitespace, parse_value_text
from stats.services.errors import ImportFailed, RowError

# Serializes imports: two at once never interleave (pg_advisory_xact_lock key).
IMPORT_LOCK_KEY = 7_240_001
BATCH_SIZE = 2000
COPY_BATCH_SIZE = 50_000

APPROXIMATE = {
    Qualifier.MORE_THAN,
    Qualifier.OVER,
    Qualifier.NEARLY,
    Qualifier.APPROXIMATELY,
    Qualifier.AT_LEAST,
    Qualifier.LESS_THAN,
    Qualifier.PLUS,
}
COMPARED_FIELDS = (
    "value",
    "value_text",
    "qualifier",
    "quote",
    "table",
    "flag",
    "note",
    "as_of",
    "corrected_value",
    "correction_reason",
)


@dataclass
class ObservationRow:
    """One observation as an import delivers it: natural keys and printed text, never ids."""

    indicator: str
    source: str
    year: int
    value_text: str
    members: dict[str, str] = field(default_factory=dict)  # dimension code -> member code/label/alias
    qualifier: str = Qualifier.EXACT
    value: Decimal | None = None  # only where value_text is not a number ("doubled")
    period: str = Period.ANNUAL
    since: int | None = None
    as_of: date | None = None
    quote: str = ""
    table: str = ""
    flag: str = ""
    note: str = ""
    corrected_value: Decimal | None = None
    correction_reason: str = ""
    row: int | str | None = None  # where it came from, for error messages
    from_table: bool = False


@dataclass
class ValidRow:
    """A row resolved against the catalog, ready to write."""

    source_row: ObservationRow
    indicator_id: int
    source_id: int
    member_ids: tuple[int, ...]
    fields: dict[str, Any]

    @property
    def key(self) -> tuple:
        f = self.fields
        return (
            self.indicator_id,
            self.source_id,
            f["year"],
            f["period"],
            f["since"],
            self.member_ids,
        )


@dataclass
class Change:
    observation_id: int
    row: int | str | None
    before: dict[str, Any]
    after: dict[str, Any]


@dataclass
class ImportResult:
    rows: int = 0
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    restatements: int = 0
    changes: list[Change] = field(default_factory=list)
    new_rows: list[ValidRow] = field(default_factory=list)
    valid_rows: list[ValidRow] = field(default_factory=list)  # every row that will be an observation
    record: ImportRecord | None = None
    dry_run: bool = False


def _validate_row(row: ObservationRow, lookup: CatalogLookup) -> tuple[ValidRow | None, list[RowError]]:
    errors: list[RowError] = []

    def fail(column: str | None, message: str) -> None:
        errors.append(RowError(row.row, column, message))

    indicator = source = None
    try:
        indicator = lookup.indicator(row.indicator)
    except LookupFailed as exc:
        fail("indicator", str(exc))
    try:
        source = lookup.source(row.source)
    except LookupFailed as exc:
        fail("source", str(exc))
    member_ids: list[int] = []
    for dimension_code, text in row.members.items():
        try:
            member_ids.append(lookup.member(dimension_code, text).id)
        except LookupFailed as exc:
            fail(dimension_code, str(exc))
    try:
        year = int(row.year)
        if not 1984 <= year <= 2100:
            fail("year", f"year {year} is outside 1984–2100")
    except (TypeError, ValueError):
        fail("year", f"year {row.year!r} is not a whole number")
        year = None
    if row.period not in Period.values:
        fail("period", f"unknown period '{row.period}' (expected one of {', '.join(Period.values)})")
    if row.since is not None and row.period != Period.CUMULATIVE:
        fail("since", "since is only for cumulative figures")
    if row.since is not None and year is not None and int(row.since) > year:
        fail("since", f"since {row.since} is after the year {year}")
    if row.qualifier not in Qualifier.values:
        fail(
            "qualifier",
            f"unknown qualifier '{row.qualifier}' (expected one of {', '.join(Qualifier.values)})",
        )
    if row.flag and row.flag not in Flag.values:
        fail("flag", f"unknown flag '{row.flag}' (expected one of {', '.join(Flag.values)})")

    value_text = collapse_whitespace(row.value_text or "")
    value = row.value
    qualifier = row.qualifier
    if value_text.startswith(("=", "@")) or (
        value_text[:1] in "+-" and len(value_text) > 1 and not value_text[1].isdigit()
    ):
        fail("value", f"'{value_text}' looks like a spreadsheet formula, not a printed figure")
    elif not value_text and value is None:
        if row.flag != Flag.MISSING_VALUE:
            fail(
                "value",
                "no figure: leave it out, or set flag missing_value when the document prints none",
            )
    elif value is None:
        try:
            parsed = parse_value_text(value_text)
        except ValueTextError as exc:
            fail("value", str(exc))
        else:
            value = parsed.value
            if parsed.plus:
                if qualifier not in (Qualifier.EXACT, Qualifier.PLUS):
                    fail("qualifier", f"'{value_text}' ends in + but the qualifier is {qualifier}")
                qualifier = Qualifier.PLUS
            if parsed.less_than:
                qualifier = Qualifier.LESS_THAN
            if indicator is not None:
                unit = indicator.unit
                if (
                    parsed.is_percent
                    and unit not in (Unit.PERCENT, Unit.PERCENT_CHANGE)
                    and row.flag != Flag.UNIT_MISMATCH
                ):
                    fail(
                        "value",
                        f"'{value_text}' is a percentage but {indicator.code} is measured in {unit}",
                    )
                if parsed.is_one_in_n and unit != Unit.ONE_IN_N:
                    fail(
                        "value",
                        f"'{value_text}' is a '1 in N' ratio but {indicator.code} is measured in {unit}",
                    )
    if indicator is not None:
        for name, v in (("value", value), ("corrected_value", row.corrected_value)):
            if v is not None and not _fits_unit(indicator.unit, v):
                fail(name, f"{v} is out of range for {indicator.code} ({_unit_rule(indicator.unit)})")
    if row.corrected_value is not None and not row.correction_reason.strip():
        fail("correction_reason", "a corrected value needs a reason")
    if errors:
        return None, errors
    fields = {
        "year": year,
        "period": row.period,
        "since": int(row.since) if row.since is not None else None,
        "as_of": row.as_of,
        "value": value,
        "value_text": value_text,
        "qualifier": qualifier,
        "quote": collapse_whitespace(row.quote),
        "table": collapse_whitespace(row.table),
        "flag": row.flag or "",
        "note": (row.note or "").strip(),
        "corrected_value": row.corrected_value,
        "correction_reason": (row.correction_reason or "").strip(),
    }
    return ValidRow(row, indicator.id, source.id, tuple(sorted(member_ids)), fields), []


def _fits_unit(unit: str, v: Decimal) -> bool:
    return {
        Unit.COUNT: v >= 0,
        Unit.PERCENT: 0 <= v <= 100,
        Unit.PERCENT_CHANGE: v >= -100,
        Unit.ONE_IN_N: v >= 1,
        Unit.MULTIPLE: v > 0,
    }.get(unit, False)


def _unit_rule(unit: str) -> str:
    return {
        Unit.COUNT: "counts cannot be negative",
        Unit.PERCENT: "percentages lie between 0 and 100",
        Unit.PERCENT_CHANGE: "a decrease cannot exceed 100%",
        Unit.ONE_IN_N: '"1 in N" needs N of at least 1',
        Unit.MULTIPLE: "a multiple must be positive",
    }.get(unit, unit)


def _precision_rank(row: ValidRow) -> tuple:
    """Which of several printings of one fact is the observation: exact, then table, then first."""
    f = row.fields
    return (f["value"] is None, f["qualifier"] in APPROXIMATE, not row.source_row.from_table)


def _merge_printings(valid: list[ValidRow], merge: bool) -> tuple[list[ValidRow], dict, list[RowError]]:
    """Group rows by fact key; with ``merge`` the extra printings become restatements."""
    groups: dict[tuple, list[ValidRow]] = defaultdict(list)
    for row in valid:
        groups[row.key].append(row)
    primaries, restatements, errors = [], {}, []
    for key, rows in groups.items():
        if len(rows) > 1 and not merge:
            first = rows[0].source_row.row
            for dup in rows[1:]:
                errors.append(
                    RowError(
                        dup.source_row.row,
                        None,
                        f"duplicate of row {first}: same indicator, source, year, period and breakdown",
                    )
                )
            continue
        ordered = sorted(rows, key=_precision_rank)
        primaries.append(ordered[0])
        restatements[key] = ordered[1:]
    return primaries, restatements, errors


def _restatement_values(rows: list[ValidRow]) -> list[dict]:
    return [{k: r.fields[k] for k in ("value", "value_text", "qualifier", "quote", "flag", "note")} for r in rows]


def _existing(keys: list[tuple]) -> dict[tuple, Observation]:
    if not keys:
        return {}
    indicator_ids = {k[0] for k in keys}
    source_ids = {k[1] for k in keys}
    years = {k[2] for k in keys}
    found = {}
    qs = Observation.objects.filter(
        indicator_id__in=indicator_ids, source_id__in=source_ids, year__in=years
    ).prefetch_related("restatements")
    wanted = set(keys)
    for obs in qs.iterator(chunk_size=5000):
        key = (
            obs.indicator_id,
            obs.source_id,
            obs.year,
            obs.period,
            obs.since,
            tuple(obs.member_ids),
        )
        if key in wanted:
            found[key] = obs
    return found


def _same(a, b) -> bool:
    if isinstance(a, Decimal) or isinstance(b, Decimal):
        return (a is None and b is None) or (a is not None and b is not None and Decimal(a) == Decimal(b))
    return a == b


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
    progress=None,
) -> ImportResult:
    """Validate ``rows`` and write them as observations, all or nothing.

    - Every row is validated first (catalog codes, figures, units); any error raises
      :class:`ImportFailed` listing all of them and nothing is written.
    - Rows for facts that already exist update them when they differ; that needs a ``reason``
      (``allow_changes`` defaults to "a reason was given").
    - ``merge_restatements`` (published reports): several rows for one fact become one
      observation and its restatements; otherwise they are duplicate-row errors.
    - ``dry_run`` computes the same preview (new / changed / unchanged) and writes nothing.
    """
    options = options or {}
    if allow_changes is None:
        allow_changes = bool(reason.strip())
    lookup = CatalogLookup.load()
    valid: list[ValidRow] = []
    errors: list[RowError] = []
    for row in rows:
        ok, row_errors = _validate_row(row, lookup)
        errors.extend(row_errors)
        if ok:
            valid.append(ok)
    primaries, restated, merge_errors = _merge_printings(valid, merge_restatements)
    errors.extend(merge_errors)
    record_fields = dict(
        user=user if getattr(user, "is_authenticated", False) else None,
        channel=channel,
        shape=shape,
        file_name=file_name,
        checksum=checksum,
        rows=len(rows),
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

    if errors or dry_run:
        plan = _plan(primaries, restated, allow_changes, ImportResult(rows=len(rows), dry_run=dry_run))
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
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [IMPORT_LOCK_KEY])
            plan = _plan(primaries, restated, allow_changes, ImportResult(rows=len(rows)))
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
                context = {"user": _user_id(user), "reason": reason or "import", "channel": channel}
                with pghistory.context(**context, import_record=result.record.id):
                    _write(plan.to_create, plan.to_update, plan.restatement_writes, progress)
                observations_refresh_preferred(indicator_ids={r.indicator_id for r in primaries})
    except ImportFailed as exc:
        raise failed(exc.errors) from None
    except (IntegrityError, psycopg.errors.IntegrityError) as exc:
        raise failed([RowError(None, None, f"the database refused the import: {_db_message(exc)}")]) from exc
    return result


@dataclass
class _Plan:
    result: ImportResult
    to_create: list = field(default_factory=list)
    to_update: list = field(default_factory=list)
    restatement_writes: dict = field(default_factory=dict)
    errors: list[RowError] = field(default_factory=list)


def _plan(primaries: list[ValidRow], restated: dict, allow_changes: bool, result: ImportResult) -> _Plan:
    """What the import would do against the data as it is now: new, changed, unchanged, conflicts."""
    plan = _Plan(result)
    result.valid_rows = list(primaries)
    existing = _existing([r.key for r in primaries])
    for row in primaries:
        wanted_restatements = _restatement_values(restated.get(row.key, []))
        result.restatements += len(wanted_restatements)
        obs = existing.get(row.key)
        if obs is None:
            result.new += 1
            result.new_rows.append(row)
            plan.to_create.append((row, wanted_restatements))
            continue
        before = {k: getattr(obs, k) for k in COMPARED_FIELDS}
        differs = [k for k in COMPARED_FIELDS if not _same(before[k], row.fields[k])]
        current_restatements = _restatement_values_from_db(obs)
        if not differs and current_restatements == wanted_restatements:
            result.unchanged += 1
            continue
        if not allow_changes:
            shown = ", ".join(f"{k} {before[k]!r} → {row.fields[k]!r}" for k in differs) or "restatements"
            message = f"conflicts with existing observation #{obs.id} ({shown}); give a reason to change existing data"
            plan.errors.append(RowError(row.source_row.row, None, message))
            continue
        result.changed += 1
        result.changes.append(Change(obs.id, row.source_row.row, before, dict(row.fields)))
        plan.to_update.append((obs, row))
        if current_restatements != wanted_restatements:
            plan.restatement_writes[obs.id] = wanted_restatements
    return plan


def _restatement_values_from_db(obs: Observation) -> list[dict]:
    return [
        {k: getattr(r, k) for k in ("value", "value_text", "qualifier", "quote", "flag", "note")}
        for r in obs.restatements.all()
    ]


COPY_COLUMNS = ("indicator_id", "source_id", "member_ids", "year", "period", "since", "as_of", "value", "value_text",
                "qualifier", "quote", "table", "flag", "note", "corrected_value", "correction_reason", "is_preferred",
                "version", "created_at", "updated_at")  # fmt: skip


def _copy_new(batch) -> None:
    """Insert new observations with COPY: the database's triggers still check every row."""
    now = timezone.now()
    columns = ", ".join(f'"{c}"' for c in COPY_COLUMNS)
    with connection.cursor() as cursor:
        # pghistory sets its context (who, why) by prefixing statements it does not skip; plain SELECTs
        # are skipped, COPY bypasses Django's cursor: run one such statement first in this transaction.
        cursor.execute("WITH history_context AS (SELECT 1) SELECT 1")
        with cursor.cursor.copy(f"COPY stats_observation ({columns}) FROM STDIN") as copy:
            for row, _ in batch:
                f = row.fields
                copy.write_row(
                    (row.indicator_id, row.source_id, list(row.member_ids), f["year"], f["period"], f["since"],
                     f["as_of"], f["value"], f["value_text"], f["qualifier"], f["quote"], f["table"], f["flag"],
                     f["note"], f["corrected_value"], f["correction_reason"], True, 1, now, now)
                )  # fmt: skip


def _write(to_create, to_update, restatement_writes, progress) -> None:
    for start in range(0, len(to_create), COPY_BATCH_SIZE):
        batch = to_create[start : start + COPY_BATCH_SIZE]
        _copy_new(batch)
        if progress:
            progress(len(batch))
    with_restatements = {row.key: restatements for row, restatements in to_create if restatements}
    if with_restatements:
        ids = {key: obs.id for key, obs in _existing(list(with_restatements)).items()}
        Restatement.objects.bulk_create(
            [
                Restatement(observation_id=ids[key], **values)
                for key, rows in with_restatements.items()
                for values in rows
            ]
        )
    now = timezone.now()
    for start in range(0, len(to_update), BATCH_SIZE):
        batch = to_update[start : start + BATCH_SIZE]
        for obs, row in batch:
            for name, value in row.fields.items():
                setattr(obs, name, value)
            obs.version += 1
            obs.updated_at = now
        Observation.objects.bulk_update([obs for obs, _ in batch], [*COMPARED_FIELDS, "version", "updated_at"])
        if progress:
            progress(len(batch))
    if restatement_writes:
        Restatement.objects.filter(observation_id__in=list(restatement_writes)).delete()
        Restatement.objects.bulk_create(
            [Restatement(observation_id=oid, **values) for oid, rows in restatement_writes.items() for values in rows]
        )


def observations_refresh_preferred(*, indicator_ids=None) -> int:
    """Mark, per fact, the observation plain queries return (rule in docs/data.md)."""
    where = "WHERE o.indicator_id = ANY(%s)" if indicator_ids is not None else ""
    params = [list(indicator_ids)] if indicator_ids is not None else []
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH ranked AS (
              SELECT o.id, row_number() OVER (
                PARTITION BY o.indicator_id, o.year, o.period, o.since, o.member_ids
                ORDER BY CASE WHEN s.kind = 'impact_report' AND s.edition = o.year THEN 0
                              WHEN s.kind = 'impact_report' THEN 1 ELSE 2 END,
                         s.edition DESC, s.id) AS rank
              FROM stats_observation o JOIN stats_source s ON s.id = o.source_id
              {where}
            )
            UPDATE stats_observation o SET is_preferred = (ranked.rank = 1)
            FROM ranked
            WHERE o.id = ranked.id AND o.is_preferred IS DISTINCT FROM (ranked.rank = 1)
            """,
            params,
        )
        return cursor.rowcount


def _user_id(user) -> int | None:
    return user.pk if getattr(user, "is_authenticated", False) else None


def _db_message(exc: Exception) -> str:
    diag = getattr(exc, "diag", None) or getattr(getattr(exc, "__cause__", None), "diag", None)
    return getattr(diag, "message_primary", None) or str(exc).splitlines()[0]


def file_checksum(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def observation_update(
    *,
    observation_id: int,
    changes: dict[str, Any],
    reason: str,
    user=None,
    expected_version: int | None = None,
    channel: str = "admin",
) -> Observation:
    """Change one observation's printed figure, flag or correction, with an audited reason.

    Refuses (ConflictError) when ``expected_version`` is given and someone saved in between,
    so no edit silently overwrites another.
    """
    from django.core.exceptions import ValidationError

    from stats.services.errors import ConflictError

    if not reason or not reason.strip():
        raise ValidationError({"reason": "A reason is required for every change to an observation."})
    unknown = set(changes) - set(EDITABLE_FIELDS)
    if unknown:
        raise ValidationError({f: "This field cannot be changed here." for f in unknown})
    with (
        transaction.atomic(),
        pghistory.context(user=_user_id(user), reason=reason.strip(), channel=channel),
    ):
        obs = Observation.objects.select_for_update().select_related("indicator").filter(id=observation_id).first()
        if obs is None:
            raise ValidationError({"id": f"observation #{observation_id} does not exist"})
        if expected_version is not None and obs.version != expected_version:
            raise ConflictError(
                f"observation #{obs.id} was changed by someone else since you opened it "
                f"(version {obs.version}, you saw {expected_version}); reload it and apply your change again"
            )
        for name, value in changes.items():
            setattr(obs, name, value)
        if "value_text" in changes and "value" not in changes and obs.value_text:
            try:
                obs.value = parse_value_text(obs.value_text).value
            except ValueTextError as exc:
                raise ValidationError({"value_text": str(exc)}) from exc
        errors = {}
        for name in ("value", "corrected_value"):
            v = getattr(obs, name)
            if v is not None and not _fits_unit(obs.indicator.unit, Decimal(v)):
                errors[name] = f"{v} is out of range for {obs.indicator.code} ({_unit_rule(obs.indicator.unit)})"
        if obs.corrected_value is None and "corrected_value" in changes:
            obs.correction_reason = changes.get("correction_reason", "")
        elif obs.corrected_value is not None and not obs.correction_reason:
            obs.correction_reason = reason.strip()
        if obs.flag and obs.flag not in Flag.values:
            errors["flag"] = f"unknown flag '{obs.flag}' (expected one of {', '.join(Flag.values)})"
        if obs.value is None and obs.flag != Flag.MISSING_VALUE:
            errors["value"] = "A value is required unless the flag is missing_value."
        if errors:
            raise ValidationError(errors)
        obs.version += 1
        obs.save()
    return obs


def observation_correct(
    *,
    observation_id: int,
    value: Decimal | None,
    reason: str,
    user=None,
    expected_version: int | None = None,
    channel: str = "graphql",
) -> Observation:
    """Record the right value of a printed figure (the printed value stays); None removes it."""
    return observation_update(
        observation_id=observation_id,
        changes={"corrected_value": value, "correction_reason": reason.strip() if value is not None else ""},
        reason=reason,
        user=user,
        expected_version=expected_version,
        channel=channel,
    )


def observation_flag(
    *,
    observation_id: int,
    flag: str,
    note: str,
    user=None,
    expected_version: int | None = None,
    channel: str = "graphql",
) -> Observation:
    """Set or clear (empty ``flag``) a data-quality flag; the note says what is wrong."""
    return observation_update(
        observation_id=observation_id,
        changes={"flag": flag, "note": note},
        reason=note or f"flag {flag or 'cleared'}",
        user=user,
        expected_version=expected_version,
        channel=channel,
    )


def observation_revert(*, event_id: int, reason: str, user=None, channel: str = "admin") -> Observation:
    """Put an observation back to the state a history event recorded (its snapshot after that event)."""
    from django.apps import apps
    from django.core.exceptions import ValidationError

    event = apps.get_model("stats", "ObservationEvent").objects.filter(pgh_id=event_id).first()
    if event is None:
        raise ValidationError({"event": f"history event #{event_id} does not exist"})
    changes = {name: getattr(event, name) for name in EDITABLE_FIELDS}
    return observation_update(
        observation_id=event.pgh_obj_id, changes=changes, reason=reason, user=user, channel=channel
    )
