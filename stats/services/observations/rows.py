"""What an import delivers (ObservationRow) and what validation makes of it (ValidRow)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from stats.models import Period, Qualifier

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
    year: int | str  # as given; validation reads it (and since, as_of) and names what is wrong
    value_text: str
    members: dict[str, str] = field(default_factory=dict)  # dimension code -> member code/label/alias
    qualifier: str = Qualifier.EXACT
    value: Decimal | None = None  # only where value_text is not a number ("doubled")
    period: str = Period.ANNUAL
    since: int | str | None = None
    as_of: date | str | None = None
    quote: str = ""
    table: str = ""
    flag: str = ""
    note: str = ""
    corrected_value: Decimal | None = None
    correction_reason: str = ""
    row: int | str | None = None  # where it came from, for error messages
    from_table: bool = False
    # Internal column -> the file's own header ("value" -> "Active"), for error messages; one dict
    # shared by the rows of a file (or of a table column).
    columns: dict[str, str] | None = None
    # Optional fields the file left empty (or the importer filled with a default, like a table's
    # title): a re-upload keeps what is stored for them instead of counting a change.
    unset: frozenset[str] = frozenset()


# The values of a ValidRow, in this order (the first three are part of the fact's key).
FIELD_NAMES = ("year", "period", "since", "as_of", "value", "value_text", "qualifier", "quote", "table", "flag",
               "note", "corrected_value", "correction_reason")  # fmt: skip
FIELD_INDEX = {name: i for i, name in enumerate(FIELD_NAMES)}
COMPARED_INDEX = tuple(FIELD_INDEX[name] for name in COMPARED_FIELDS)
RESTATEMENT_FIELDS = ("value", "value_text", "qualifier", "quote", "flag", "note")
RESTATEMENT_INDEX = tuple(FIELD_INDEX[name] for name in RESTATEMENT_FIELDS)
VALUE, QUALIFIER = FIELD_INDEX["value"], FIELD_INDEX["qualifier"]


class ValidRow:
    """A row resolved against the catalog, ready to write.

    One per imported row, so kept small: ids, the field values as a tuple in ``FIELD_NAMES`` order
    (``fields`` builds the dict on demand) and where the row came from; not the source row itself,
    which is dropped once validated.
    """

    __slots__ = ("from_table", "indicator_id", "member_ids", "row", "source_id", "unset", "values")

    def __init__(self, source_row: ObservationRow, indicator_id: int, source_id: int,
                 member_ids: tuple[int, ...], fields: dict[str, Any] | tuple) -> None:  # fmt: skip
        self.row = source_row.row
        self.from_table = source_row.from_table
        self.unset = source_row.unset
        self.indicator_id = indicator_id
        self.source_id = source_id
        self.member_ids = member_ids
        self.values = tuple(fields[name] for name in FIELD_NAMES) if isinstance(fields, dict) else tuple(fields)

    @classmethod
    def restored(cls, row, from_table: bool, unset: frozenset[str], indicator_id: int, source_id: int,
                 member_ids: tuple[int, ...], values: tuple) -> ValidRow:  # fmt: skip
        """A row as it was validated, from what the import staged of it (its source row is gone)."""
        new = object.__new__(cls)
        new.row, new.from_table, new.unset = row, from_table, unset
        new.indicator_id, new.source_id, new.member_ids, new.values = indicator_id, source_id, member_ids, values
        return new

    def replaced(self, values: tuple, unset: frozenset[str] | None = None) -> ValidRow:
        """The same row with other field values (and, given, other fields its file left empty)."""
        new = object.__new__(ValidRow)
        new.row, new.from_table = self.row, self.from_table
        new.indicator_id, new.source_id, new.member_ids = self.indicator_id, self.source_id, self.member_ids
        new.unset = self.unset if unset is None else unset
        new.values = tuple(values)
        return new

    @property
    def fields(self) -> dict[str, Any]:
        return dict(zip(FIELD_NAMES, self.values, strict=True))

    @property
    def key(self) -> tuple:
        v = self.values
        return (self.indicator_id, self.source_id, v[0], v[1], v[2], self.member_ids)

    def _astuple(self) -> tuple:
        return (self.row, self.from_table, self.indicator_id, self.source_id, self.member_ids, self.values)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ValidRow):
            return NotImplemented
        return self._astuple() == other._astuple()

    __hash__ = None  # mutable, like the dataclass it replaces

    def __repr__(self) -> str:
        return (
            f"ValidRow(row={self.row!r}, indicator_id={self.indicator_id!r}, source_id={self.source_id!r}, "
            f"member_ids={self.member_ids!r}, fields={self.fields!r})"
        )
