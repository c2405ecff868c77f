"""The rules every imported row obeys: catalog codes, printed figures, units."""

from __future__ import annotations

from decimal import Decimal

from stats.lookups import CatalogLookup, LookupFailed
from stats.models import Flag, Period, Qualifier, Unit
from stats.printed import ValueTextError, collapse_whitespace, parse_value_text
from stats.services.errors import RowError
from stats.services.observations.rows import ObservationRow, ValidRow

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


class RowValidator:
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
            if value is not None and not fits_unit(unit, value):
                fail("value", f"{value} is out of range for {indicator.code} ({unit_rule(unit)})")
            if corrected_value is not None and not fits_unit(unit, corrected_value):
                fail("corrected_value", f"{corrected_value} is out of range for {indicator.code} ({unit_rule(unit)})")
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
    """Validate one row (for many, reuse one ``RowValidator``: it remembers what it looked up)."""
    return RowValidator(lookup).validate(row)


def fits_unit(unit: str, v: Decimal) -> bool:
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


def unit_rule(unit: str) -> str:
    return {
        Unit.COUNT: "counts cannot be negative",
        Unit.PERCENT: "percentages lie between 0 and 100",
        Unit.PERCENT_CHANGE: "a decrease cannot exceed 100%",
        Unit.ONE_IN_N: '"1 in N" needs N of at least 1',
        Unit.MULTIPLE: "a multiple must be positive",
    }.get(unit, unit)
