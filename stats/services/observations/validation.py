"""The rules every imported row obeys: catalog codes, printed figures, units."""

from __future__ import annotations

from datetime import date, datetime, time
from decimal import Decimal

from stats.lookups import CatalogLookup, LookupFailed
from stats.models import Flag, Period, Qualifier, Unit
from stats.printed import ValueTextError, collapse_whitespace, format_decimal, parse_value_text
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


_UNREAD = object()  # a value not read yet (None is a reading: "not a whole number")


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
        self._years: dict = {}  # a year as text -> whole_number's reading of it
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
        formula = looks_like_formula(value_text)
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
        names = row.columns  # internal column -> the file's own header, where the file has one

        def fail(column: str | None, message: str) -> None:
            errors.append(RowError(where, names.get(column, column) if names else column, message))

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
            year = self._years.get(year, _UNREAD) if year.__class__ is str else _UNREAD
            if year is _UNREAD:
                year = whole_number(row.year)
                if row.year.__class__ is str and len(self._years) < self._texts_max:
                    self._years[row.year] = year
            if year is None:
                fail("year", f"year {shown_input(row.year)} is not a whole number")
        if year is not None and not 1984 <= year <= 2100:
            fail("year", f"year {year} is outside 1984–2100")
        period = row.period
        if not isinstance(period, str) or period not in _PERIODS:
            fail("period", f"unknown period {shown_input(period)} (expected one of {_PERIOD_LIST})")
        since = row.since
        if since is not None:
            if since.__class__ is not int:
                since = whole_number(since)
            if since is None:
                fail("since", f"since {shown_input(row.since)} is not a whole number (the first year)")
            elif period != _CUMULATIVE:
                fail("since", "since is only for cumulative figures")
            elif not 1984 <= since <= 2100:
                fail("since", f"since {since} is outside 1984–2100")
            elif year is not None and since > year:
                fail("since", f"since {since} is after the year {year}")
        as_of = row.as_of
        if as_of is not None and as_of.__class__ is not date:
            as_of = read_date(as_of)
            if as_of is None:
                fail("as_of", f"as_of {shown_input(row.as_of)} is not a date (YYYY-MM-DD)")
        qualifier = row.qualifier
        if not isinstance(qualifier, str) or qualifier not in _QUALIFIERS:
            fail("qualifier", f"unknown qualifier {shown_input(qualifier)} (expected one of {_QUALIFIER_LIST})")
        flag = row.flag
        if flag and (not isinstance(flag, str) or flag not in _FLAGS):
            fail("flag", f"unknown flag {shown_input(flag)} (expected one of {_FLAG_LIST})")

        text = row.value_text or ""
        if text.__class__ is not str:
            text = str(text)
        value_text, formula, parsed, parse_error = self._figure(text)
        value, corrected_value = row.value, row.corrected_value
        unstorable = False
        for column, number in (("value", value), ("corrected_value", corrected_value)):
            if number is not None and (problem := storable_problem(number)):
                fail(column, problem)
                unstorable = True
        if unstorable:
            value = corrected_value = None
        if formula:
            fail("value", f"'{value_text}' looks like a spreadsheet formula, not a printed figure")
        elif len(value_text) > VALUE_TEXT_MAX or "\x00" in value_text:
            fail("value", f"the printed figure {free_text_problem(value_text, VALUE_TEXT_MAX)}")
        elif not value_text and value is None:
            if flag != _MISSING_VALUE:
                fail("value", "no figure: set flag missing_value when the document prints none")
        elif parse_error is not None:
            if value is None:
                fail("value", parse_error)
        elif parsed is not None:
            if value is None:
                value = parsed.value
            elif value != parsed.value:
                fail("value", f"'{value_text}' reads as {format_decimal(parsed.value)}, not {format_decimal(value)}")
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
                    fail("value", f"'{value_text}' is a '1 in N' ratio but {indicator.code} is measured in {unit}")
        if value is not None and value is not row.value and (problem := storable_problem(value)):
            fail("value", problem)  # read from the text: "1.23456", "99,999,999,999,999 billion"
            value = None
        if indicator is not None:
            unit = indicator.unit
            for column, number in (("value", value), ("corrected_value", corrected_value)):
                if number is not None and not fits_unit(unit, number):
                    fail(column, f"{format_decimal(number)} is out of range for {indicator.code} ({unit_rule(unit)})")
        if corrected_value is not None and not str(row.correction_reason or "").strip():
            fail("correction_reason", "a corrected value needs a reason")
        table, note, why = row.table, row.note, row.correction_reason
        quote = self._text(row.quote)
        table = self._text(table) if table else ""
        note = str(note).strip() if note else ""
        why = str(why).strip() if why else ""
        for column, free_text, limit in (("quote", quote, None), ("table", table, TABLE_MAX), ("note", note, None),
                                         ("correction_reason", why, None)):  # fmt: skip
            if free_text and (problem := free_text_problem(free_text, limit)):
                fail(column, problem)
        if errors:
            return None, errors
        values = (year, period, since, as_of, value, value_text, qualifier, quote, table, flag or "", note,
                  corrected_value, why)  # fmt: skip
        return ValidRow(row, indicator.id, source.id, member_ids, values), errors


# The stored columns' limits (stats.models.Observation).
VALUE_TEXT_MAX = 100
TABLE_MAX = 500
INTEGER_DIGITS_MAX = 20  # DecimalField(max_digits=24, decimal_places=4)
DECIMAL_PLACES_MAX = 4


def looks_like_formula(text: str) -> bool:
    """A spreadsheet would run it (CSV injection): =..., @..., or +/- not followed by a digit."""
    return text.startswith(("=", "@")) or (text[:1] in "+-" and len(text) > 1 and not text[1].isdigit())


def free_text_problem(text: str, limit: int | None = None) -> str | None:
    if "\x00" in text:
        return "contains a NUL character (a binary file?)"
    if limit is not None and len(text) > limit:
        return f"is {len(text)} characters long (at most {limit})"
    if looks_like_formula(text):
        return f"'{text[:40]}' looks like a spreadsheet formula; start it with a word"
    return None


def storable_problem(number) -> str | None:
    """Why a number cannot be stored as it is (never rounded or cut silently), or None."""
    if not isinstance(number, Decimal) or not number.is_finite():
        return f"{str(number)[:40]} is not a number that can be stored"
    if number and number.adjusted() + 1 > INTEGER_DIGITS_MAX:
        return f"{str(number)[:40]} is too large (at most {INTEGER_DIGITS_MAX} digits before the point)"
    if (
        number.as_tuple().exponent < -DECIMAL_PLACES_MAX
        and number.normalize().as_tuple().exponent < -DECIMAL_PLACES_MAX
    ):
        return f"{format_decimal(number)[:40]} has more than {DECIMAL_PLACES_MAX} decimal places"
    return None


def whole_number(value) -> int | None:
    """A year as files give it: 2021, "2021", 2021.0 (a spreadsheet number); None for 2021.7, "abc", True."""
    if value.__class__ is bool:
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float | Decimal):
        try:
            return int(value) if value == int(value) else None
        except (ValueError, OverflowError, ArithmeticError):  # NaN, infinity
            return None
    text = str(value).strip()
    if text.endswith(".0"):
        text = text[:-2]
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 6 else None


def read_date(value) -> date | None:
    """A date as files give it: a date, "2021-05-01", or a spreadsheet's "2021-05-01 00:00:00"; else None."""
    if isinstance(value, datetime):
        return value.date() if value.time() == time() else None
    if isinstance(value, date):
        return value
    text = str(value).strip()
    if text.endswith((" 00:00:00", "T00:00:00")):
        text = text[:10]
    try:
        found = date.fromisoformat(text) if len(text) == 10 else None
    except ValueError:
        return None
    return found if found is not None and 1984 <= found.year <= 2100 else None


def shown_input(value) -> str:
    """An input value in a message, cut short: 'abc', 2021.7."""
    text = str(value)
    return repr(text[:40] + "…" if len(text) > 40 else text) if isinstance(value, str) else text[:40]


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
