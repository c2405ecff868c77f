"""The one validated write path for observations.

Admin imports (long and table shape), the CLI, the fixture loader and GraphQL mutations all end
here. An import is all-or-nothing: every row is validated first and any error aborts it before
anything is written; the write itself runs in one transaction, serialized with other imports.
"""

from __future__ import annotations

import hashlib
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


@dataclass(slots=True)
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


# The values of a ValidRow, in this order (the first three are part of the fact's key).
FIELD_NAMES = ("year", "period", "since", "as_of", "value", "value_text", "qualifier", "quote", "table", "flag",
               "note", "corrected_value", "correction_reason")  # fmt: skip
_FIELD_INDEX = {name: i for i, name in enumerate(FIELD_NAMES)}
_COMPARED_INDEX = tuple(_FIELD_INDEX[name] for name in COMPARED_FIELDS)
RESTATEMENT_FIELDS = ("value", "value_text", "qualifier", "quote", "flag", "note")
_RESTATEMENT_INDEX = tuple(_FIELD_INDEX[name] for name in RESTATEMENT_FIELDS)
_VALUE, _QUALIFIER = _FIELD_INDEX["value"], _FIELD_INDEX["qualifier"]


class ValidRow:
    """A row resolved against the catalog, ready to write.

    One per imported row, so kept small: the field values are a tuple in ``FIELD_NAMES`` order and
    ``fields`` builds the dict on demand.
    """

    __slots__ = ("indicator_id", "member_ids", "source_id", "source_row", "values")

    def __init__(self, source_row: ObservationRow, indicator_id: int, source_id: int,
                 member_ids: tuple[int, ...], fields: dict[str, Any] | tuple) -> None:  # fmt: skip
        self.source_row = source_row
        self.indicator_id = indicator_id
        self.source_id = source_id
        self.member_ids = member_ids
        self.values = tuple(fields[name] for name in FIELD_NAMES) if isinstance(fields, dict) else tuple(fields)

    @property
    def fields(self) -> dict[str, Any]:
        return dict(zip(FIELD_NAMES, self.values, strict=True))

    @property
    def key(self) -> tuple:
        v = self.values
        return (self.indicator_id, self.source_id, v[0], v[1], v[2], self.member_ids)

    def _astuple(self) -> tuple:
        return (self.source_row, self.indicator_id, self.source_id, self.member_ids, self.values)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ValidRow):
            return NotImplemented
        return self._astuple() == other._astuple()

    __hash__ = None  # mutable, like the dataclass it replaces

    def __repr__(self) -> str:
        return (
            f"ValidRow(source_row={self.source_row!r}, indicator_id={self.indicator_id!r}, "
            f"source_id={self.source_id!r}, member_ids={self.member_ids!r}, fields={self.fields!r})"
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


_PERIODS = frozenset(Period.values)
_QUALIFIERS = frozenset(Qualifier.values)
_FLAGS = frozenset(Flag.values)
_PERIOD_LIST = ", ".join(Period.values)
_QUALIFIER_LIST = ", ".join(Qualifier.values)
_FLAG_LIST = ", ".join(Flag.values)
# Enum members bound once: reading them off the class on every row is a Python-level descriptor call.
_CUMULATIVE = Period.CUMULATIVE
_EXACT, _PLUS, _LESS_THAN = Qualifier.EXACT, Qualifier.PLUS, Qualifier.LESS_THAN
_MISSING_VALUE, _UNIT_MISMATCH = Flag.MISSING_VALUE, Flag.UNIT_MISMATCH
_COUNT, _PERCENT, _PERCENT_CHANGE = Unit.COUNT, Unit.PERCENT, Unit.PERCENT_CHANGE
_ONE_IN_N_UNIT, _MULTIPLE = Unit.ONE_IN_N, Unit.MULTIPLE
_PERCENT_UNITS = (_PERCENT, _PERCENT_CHANGE)


class _Validator:
    """Checks rows one at a time against the catalog.

    An import repeats the same codes, member spellings and printed figures on many rows: what the
    catalog or the figure parser says about one text is worked out once per import and reused
    (the same answer, the same error message), the rules themselves are applied to every row.
    """

    def __init__(self, lookup: CatalogLookup) -> None:
        self.lookup = lookup
        self._indicators: dict = {}
        self._sources: dict = {}
        self._members: dict = {}  # the row's (dimension, text) pairs -> (sorted member ids, errors)
        self._figures: dict = {}  # printed text -> (collapsed text, formula?, parsed figure, parse error)
        # Distinct figures remembered (most are distinct in a large file: parsing them again is cheap,
        # holding them all is not); member spellings and codes are few and always remembered.
        self._figures_max = 10_000
        self._texts: dict = {}  # quote/table text -> collapsed
        self._texts_max = 10_000

    @staticmethod
    def _remembered(cache: dict, key, find):
        """(row, None) or (None, the lookup's message), worked out once per import for each key."""
        try:
            return cache[key]
        except KeyError:
            try:
                found = (find(key), None)
            except LookupFailed as exc:
                found = (None, str(exc))
            cache[key] = found
            return found

    def _indicator(self, code):
        return self._remembered(self._indicators, code, self.lookup.indicator)

    def _source(self, slug):
        return self._remembered(self._sources, slug, self.lookup.source)

    def _member_ids(self, members: dict):
        pairs = tuple(members.items())
        try:
            return self._members[pairs]
        except KeyError:
            ids, errors = [], []
            for dimension_code, text in pairs:
                try:
                    ids.append(self.lookup.member(dimension_code, text).id)
                except LookupFailed as exc:
                    errors.append((dimension_code, str(exc)))
            found = self._members[pairs] = (tuple(sorted(ids)), tuple(errors))
            return found

    def _figure(self, text: str):
        found = self._figures.get(text)
        if found is not None:
            return found
        value_text = collapse_whitespace(text)
        if value_text == text:
            value_text = text  # keep the row's own string, no copy
        formula = value_text.startswith(("=", "@")) or (
            value_text[:1] in "+-" and len(value_text) > 1 and not value_text[1].isdigit()
        )
        parsed = error = None
        if value_text and not formula:
            try:
                parsed = parse_value_text(value_text)
            except ValueTextError as exc:
                error = str(exc)
        found = (value_text, formula, parsed, error)
        if len(self._figures) < self._figures_max:
            self._figures[text] = found
        return found

    def _text(self, text) -> str:
        """``collapse_whitespace``, remembered for texts repeated across rows (quotes of one printed row)."""
        found = self._texts.get(text)
        if found is None:
            found = collapse_whitespace(text)
            if found == text:
                found = text  # keep the row's own string, no copy
            if len(self._texts) < self._texts_max:
                self._texts[text] = found
        return found

    def validate(self, row: ObservationRow) -> tuple[ValidRow | None, list[RowError]]:
        errors: list[RowError] = []
        where = row.row

        def fail(column: str | None, message: str) -> None:
            errors.append(RowError(where, column, message))

        found = self._indicators.get(row.indicator) or self._indicator(row.indicator)
        indicator = found[0]
        if indicator is None:
            fail("indicator", found[1])
        found = self._sources.get(row.source) or self._source(row.source)
        source = found[0]
        if source is None:
            fail("source", found[1])
        if row.members:
            member_ids, member_errors = self._member_ids(row.members)
            for column, message in member_errors:
                fail(column, message)
        else:
            member_ids = ()
        year = row.year
        if year.__class__ is not int:
            try:
                year = int(year)
            except (TypeError, ValueError):
                fail("year", f"year {row.year!r} is not a whole number")
                year = None
        if year is not None and not 1984 <= year <= 2100:
            fail("year", f"year {year} is outside 1984–2100")
        period = row.period
        if period not in _PERIODS:
            fail("period", f"unknown period '{period}' (expected one of {_PERIOD_LIST})")
        since = row.since
        if since is not None:
            if period != _CUMULATIVE:
                fail("since", "since is only for cumulative figures")
            since = int(since)
            if year is not None and since > year:
                fail("since", f"since {row.since} is after the year {year}")
        qualifier = row.qualifier
        if qualifier not in _QUALIFIERS:
            fail("qualifier", f"unknown qualifier '{qualifier}' (expected one of {_QUALIFIER_LIST})")
        flag = row.flag
        if flag and flag not in _FLAGS:
            fail("flag", f"unknown flag '{flag}' (expected one of {_FLAG_LIST})")

        text = row.value_text or ""
        value_text, formula, parsed, parse_error = self._figure(text)
        value = row.value
        if formula:
            fail("value", f"'{value_text}' looks like a spreadsheet formula, not a printed figure")
        elif not value_text and value is None:
            if flag != _MISSING_VALUE:
                fail("value", "no figure: leave it out, or set flag missing_value when the document prints none")
        elif value is None:
            if parse_error is not None:
                fail("value", parse_error)
            else:
                value = parsed.value
                if parsed.plus:
                    if qualifier != _EXACT and qualifier != _PLUS:
                        fail("qualifier", f"'{value_text}' ends in + but the qualifier is {qualifier}")
                    qualifier = _PLUS
                if parsed.less_than:
                    qualifier = _LESS_THAN
                if indicator is not None and (parsed.is_percent or parsed.is_one_in_n):
                    unit = indicator.unit
                    if parsed.is_percent and unit not in _PERCENT_UNITS and flag != _UNIT_MISMATCH:
                        fail("value", f"'{value_text}' is a percentage but {indicator.code} is measured in {unit}")
                    if parsed.is_one_in_n and unit != _ONE_IN_N_UNIT:
                        fail(
                            "value",
                            f"'{value_text}' is a '1 in N' ratio but {indicator.code} is measured in {unit}",
                        )
        corrected_value = row.corrected_value
        if indicator is not None:
            unit = indicator.unit
            if value is not None and not _fits_unit(unit, value):
                fail("value", f"{value} is out of range for {indicator.code} ({_unit_rule(unit)})")
            if corrected_value is not None and not _fits_unit(unit, corrected_value):
                fail("corrected_value", f"{corrected_value} is out of range for {indicator.code} ({_unit_rule(unit)})")
        if corrected_value is not None and not row.correction_reason.strip():
            fail("correction_reason", "a corrected value needs a reason")
        if errors:
            return None, errors
        table, note, why = row.table, row.note, row.correction_reason
        values = (
            year,
            period,
            since,
            row.as_of,
            value,
            value_text,
            qualifier,
            self._text(row.quote),
            self._text(table) if table else collapse_whitespace(table),
            flag or "",
            note.strip() if note else "",
            corrected_value,
            why.strip() if why else "",
        )
        return ValidRow(row, indicator.id, source.id, member_ids, values), errors


def _validate_row(row: ObservationRow, lookup: CatalogLookup) -> tuple[ValidRow | None, list[RowError]]:
    """Validate one row (for many, reuse one ``_Validator``: it remembers what it looked up)."""
    return _Validator(lookup).validate(row)


def _fits_unit(unit: str, v: Decimal) -> bool:
    if unit == _COUNT:
        return v >= 0
    if unit == _PERCENT:
        return 0 <= v <= 100
    if unit == _PERCENT_CHANGE:
        return v >= -100
    if unit == _ONE_IN_N_UNIT:
        return v >= 1
    if unit == _MULTIPLE:
        return v > 0
    return False


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
    v = row.values
    return (v[_VALUE] is None, v[_QUALIFIER] in APPROXIMATE, not row.source_row.from_table)


def _merge_printings(valid: list[ValidRow], merge: bool) -> tuple[list[ValidRow], dict, list[RowError]]:
    """Group rows by fact key; with ``merge`` the extra printings become restatements.

    Returns the observations in file order (first printing of each fact), the restatements of the
    facts printed more than once, and (without ``merge``) one duplicate error per extra printing.
    """
    first: dict[tuple, ValidRow] = {}
    extra: dict[tuple, list[ValidRow]] = {}
    for row in valid:
        key = row.key
        if first.setdefault(key, row) is not row:
            extra.setdefault(key, []).append(row)
    if not extra:
        return valid, {}, []
    primaries, restatements, errors = [], {}, []
    for key, row in first.items():
        dups = extra.get(key)
        if dups is None:
            primaries.append(row)
            continue
        if not merge:
            first_row = row.source_row.row
            for dup in dups:
                errors.append(
                    RowError(
                        dup.source_row.row,
                        None,
                        f"duplicate of row {first_row}: same indicator, source, year, period and breakdown",
                    )
                )
            continue
        ordered = sorted([row, *dups], key=_precision_rank)
        primaries.append(ordered[0])
        restatements[key] = ordered[1:]
    return primaries, restatements, errors


def _restatement_values(rows: list[ValidRow]) -> list[dict]:
    return [{k: r.values[i] for k, i in zip(RESTATEMENT_FIELDS, _RESTATEMENT_INDEX, strict=True)} for r in rows]


def _stored(indicator_ids, source_ids, years, wanted=None) -> dict[tuple, tuple]:
    """Stored observations of these indicators, sources and years: fact key -> (id, *COMPARED_FIELDS).

    One values query, no model instances; with ``wanted`` only those fact keys.
    """
    if not (indicator_ids and source_ids and years):
        return {}
    qs = Observation.objects.filter(
        indicator_id__in=indicator_ids, source_id__in=source_ids, year__in=years
    ).values_list("indicator_id", "source_id", "year", "period", "since", "member_ids", "id", *COMPARED_FIELDS)
    found = {}
    for r in qs.iterator(chunk_size=10_000):
        key = (r[0], r[1], r[2], r[3], r[4], tuple(r[5]))
        if wanted is None or key in wanted:
            found[key] = r[6:]
    return found


def _existing(keys) -> dict[tuple, tuple]:
    """The stored observations with these fact keys: key -> (id, *COMPARED_FIELDS)."""
    wanted = keys if isinstance(keys, set | dict) else set(keys)
    return _stored({k[0] for k in wanted}, {k[1] for k in wanted}, {k[2] for k in wanted}, wanted)


def _existing_restatements(keys) -> dict[int, list[dict]]:
    """Restatements of the stored observations of these facts: observation id -> values, in their order."""
    indicator_ids = {k[0] for k in keys}
    source_ids = {k[1] for k in keys}
    years = {k[2] for k in keys}
    if not indicator_ids:
        return {}
    qs = (
        Restatement.objects.filter(
            observation__indicator_id__in=indicator_ids,
            observation__source_id__in=source_ids,
            observation__year__in=years,
        )
        .order_by("observation_id", "id")
        .values_list("observation_id", *RESTATEMENT_FIELDS)
    )
    found: dict[int, list[dict]] = {}
    for r in qs.iterator(chunk_size=10_000):
        found.setdefault(r[0], []).append(dict(zip(RESTATEMENT_FIELDS, r[1:], strict=True)))
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

    ``rows`` may be any iterable (a generator reading a file keeps memory down); it is read once.
    """
    options = options or {}
    if allow_changes is None:
        allow_changes = bool(reason.strip())
    validate = _Validator(CatalogLookup.load()).validate
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
    primaries, restated, merge_errors = _merge_printings(valid, merge_restatements)
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

    if errors or dry_run:
        plan = _plan(primaries, restated, allow_changes, ImportResult(rows=count, dry_run=dry_run))
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
            plan = _plan(primaries, restated, allow_changes, ImportResult(rows=count))
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
                    _write(plan, progress)
                observations_refresh_preferred(indicator_ids={r.indicator_id for r in primaries})
    except ImportFailed as exc:
        raise failed(exc.errors) from None
    except (IntegrityError, psycopg.errors.IntegrityError) as exc:
        raise failed([RowError(None, None, f"the database refused the import: {_db_message(exc)}")]) from exc
    return result


@dataclass
class _Plan:
    result: ImportResult
    to_create: list[ValidRow] = field(default_factory=list)
    new_restatements: dict[tuple, list[dict]] = field(default_factory=dict)  # fact key -> restatement values
    to_update: list[tuple[int, ValidRow]] = field(default_factory=list)  # (observation id, row)
    restatement_writes: dict = field(default_factory=dict)
    errors: list[RowError] = field(default_factory=list)


def _plan(primaries: list[ValidRow], restated: dict, allow_changes: bool, result: ImportResult) -> _Plan:
    """What the import would do against the data as it is now: new, changed, unchanged, conflicts."""
    plan = _Plan(result)
    result.valid_rows = primaries
    plan.to_create = result.new_rows
    indicator_ids, source_ids, years = set(), set(), set()
    for row in primaries:
        indicator_ids.add(row.indicator_id)
        source_ids.add(row.source_id)
        years.add(row.values[0])
    # Keyed by what is stored (none for a new file), not by every imported row.
    existing = _stored(indicator_ids, source_ids, years)
    current = _existing_restatements(existing) if existing else {}
    for row in primaries:
        key = row.key
        extra = restated.get(key)
        wanted_restatements = _restatement_values(extra) if extra else []
        result.restatements += len(wanted_restatements)
        obs = existing.get(key)
        if obs is None:
            result.new += 1
            result.new_rows.append(row)
            if wanted_restatements:
                plan.new_restatements[key] = wanted_restatements
            continue
        observation_id, before_values = obs[0], obs[1:]
        values = row.values
        after_values = tuple(values[i] for i in _COMPARED_INDEX)
        if before_values == after_values:
            differs = []
        else:
            differs = [
                name for name, b, a in zip(COMPARED_FIELDS, before_values, after_values, strict=True) if not _same(b, a)
            ]
        current_restatements = current.get(observation_id, [])
        if not differs and current_restatements == wanted_restatements:
            result.unchanged += 1
            continue
        before = dict(zip(COMPARED_FIELDS, before_values, strict=True))
        if not allow_changes:
            shown = ", ".join(f"{k} {before[k]!r} → {row.fields[k]!r}" for k in differs) or "restatements"
            message = (
                f"conflicts with existing observation #{observation_id} ({shown}); "
                "give a reason to change existing data"
            )
            plan.errors.append(RowError(row.source_row.row, None, message))
            continue
        result.changed += 1
        result.changes.append(Change(observation_id, row.source_row.row, before, row.fields))
        plan.to_update.append((observation_id, row))
        if current_restatements != wanted_restatements:
            plan.restatement_writes[observation_id] = wanted_restatements
    return plan


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
                     value_text, qualifier, quote, table, flag, note, corrected, why, True, 1, now, now)
                )  # fmt: skip


def _write(plan: _Plan, progress) -> None:
    to_create, to_update = plan.to_create, plan.to_update
    for start in range(0, len(to_create), COPY_BATCH_SIZE):
        batch = to_create[start : start + COPY_BATCH_SIZE]
        _copy_new(batch)
        if progress:
            progress(len(batch))
    if plan.new_restatements:
        ids = {key: found[0] for key, found in _existing(plan.new_restatements).items()}
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
        observations = Observation.objects.in_bulk([observation_id for observation_id, _ in batch])
        changed = []
        for observation_id, row in batch:
            obs = observations[observation_id]
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
