"""Report tables as printed: one dimension down the side, another (or several indicators) across
the top, plus Total row and column. Turned into observation rows for the import service.

Used by the fixture loader (tables in fixtures/sources/*.yaml) and by staff table imports
(admin and ``manage.py import_table``), so both read a printed table the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from stats.models import Flag, Period
from stats.printed import collapse_whitespace, normalize_label
from stats.services.errors import RowError
from stats.services.observations import ObservationRow

TOTAL_LABELS = {"total", "grand total", "totals", "annual total", "overall total"}


def is_total(label: str) -> bool:
    return normalize_label(label) in TOTAL_LABELS


@dataclass
class CellNote:
    flag: str = ""
    note: str = ""
    correction: Decimal | None = None
    correction_reason: str = ""


@dataclass
class TableSpec:
    """What a printed table counts; the cells come separately."""

    source: str
    year: int
    rows: str  # dimension down the side
    columns: str | None = None  # dimension across the top; None with column_indicators or one value column
    indicator: str | None = None
    column_indicators: dict[str, str] | None = None  # header label -> indicator code
    title: str = ""
    members: dict[str, str] = field(default_factory=dict)  # fixed for every cell
    period: str = Period.ANNUAL
    since: int | None = None
    as_of: date | None = None
    flag: str = ""
    note: str = ""
    cell_notes: dict[tuple[str, str], CellNote] = field(default_factory=dict)  # (row label, column label)


def table_observation_rows(
    *,
    spec: TableSpec,
    header: list[str],
    body: list[list[str]],
    first_row: int = 2,
    location: str = "",
    row_header: str | None = None,
) -> tuple[list[ObservationRow], list[RowError]]:
    """One observation row per cell of ``body`` (each row: label, then one cell per header column).

    ``first_row`` is the row number of ``body[0]`` in the file, for error messages; with
    ``row_header`` (a file's first header cell) errors name the file's own columns: a cell's
    problems its column header ("Active"), a row label's problems that first column ("State").
    """
    errors: list[RowError] = []
    rows: list[ObservationRow] = []
    header = [collapse_whitespace(h) for h in header]
    if not header:
        return [], [RowError(location or None, None, "the table has no value columns")]
    if spec.column_indicators is None and spec.indicator is None:
        errors.append(RowError(location or None, None, "the table names no indicator"))
    column_indicators = {normalize_label(k): v for k, v in (spec.column_indicators or {}).items()}
    for label in header:
        if spec.column_indicators is not None and normalize_label(label) not in column_indicators:
            errors.append(RowError(location or None, label, f"column {label!r} names no indicator of this table"))
    notes = {(normalize_label(r), normalize_label(c)): n for (r, c), n in spec.cell_notes.items()}
    # One dict per column, shared by its cells: internal column -> the file's header.
    names = {}
    if row_header is not None:
        for label in header:
            names[label] = {"value": label, "corrected_value": label, spec.rows: row_header}
            if spec.columns:
                names[label][spec.columns] = label
    used_notes = set()
    for offset, cells in enumerate(body):
        number = first_row + offset
        where = f"{location} row {number}" if location else number
        if not cells or not collapse_whitespace(cells[0]):
            errors.append(RowError(where, spec.rows, "the row has no label"))
            continue
        label, values = collapse_whitespace(cells[0]), cells[1:]
        if len(values) != len(header):
            errors.append(
                RowError(where, None, f"{label!r} has {len(values)} cell(s) but the header has {len(header)} column(s)")
            )
            continue
        printed_row = " | ".join([label, *(collapse_whitespace(v) for v in values)])
        for column_label, text in zip(header, values, strict=True):
            members = dict(spec.members)
            if not is_total(label):
                members[spec.rows] = label
            indicator = spec.indicator
            if spec.column_indicators is not None:
                indicator = column_indicators.get(normalize_label(column_label), "")
            elif spec.columns and not is_total(column_label):
                members[spec.columns] = column_label
            text = collapse_whitespace(text)
            note_key = (normalize_label(label), normalize_label(column_label))
            cell = notes.get(note_key, CellNote())
            if note_key in notes:
                used_notes.add(note_key)
            flag = cell.flag or spec.flag
            if not text and not flag:
                flag = Flag.MISSING_VALUE
            rows.append(
                ObservationRow(
                    indicator=indicator or "",
                    source=spec.source,
                    year=spec.year,
                    members=members,
                    value_text=text,
                    period=spec.period,
                    since=spec.since,
                    as_of=spec.as_of,
                    quote=printed_row,
                    table=spec.title,
                    flag=flag,
                    note="\n".join(n for n in (spec.note, cell.note) if n),
                    corrected_value=cell.correction,
                    correction_reason=cell.correction_reason,
                    row=f"{where}, column {column_label!r}" if location else number,
                    from_table=True,
                    columns=names.get(column_label),
                )
            )
    for key in set(notes) - used_notes:
        errors.append(
            RowError(
                location or None,
                None,
                f"a cell note names row {key[0]!r}, column {key[1]!r}, not in the table",
            )
        )
    return rows, errors
