"""Reading staff import files (CSV, XLSX, JSON) into observation rows, with errors that name the
row and column. The rows then go through stats.services.observations.observations_import, the one
write path, from the admin and from the command line alike.

Two shapes:
- long: one observation per row; columns indicator, source, year, value, and one column per
  dimension code holding the member (code, label or any alias); optional period, since, as_of,
  qualifier, quote, flag, note.
- table: a report table as printed — row labels in the first column, one column per member of the
  column dimension (or a Total column), and a Total row; indicator, year and source are given apart.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

import tablib
from django.conf import settings

from stats.lookups import CatalogLookup
from stats.models import Period, Qualifier
from stats.services.errors import ImportFailed, RowError
from stats.services.observations import ObservationRow
from stats.services.tables import TableSpec, table_observation_rows

FORMATS = ("csv", "xlsx", "json")
LONG_REQUIRED = ("indicator", "source", "year", "value")
LONG_OPTIONAL = ("period", "since", "as_of", "qualifier", "quote", "flag", "note")
# What a re-upload leaves as stored when the file says nothing: the long shape has no columns for a
# table title or a correction, and an empty quote, flag, note or date is "not given", not "remove".
LONG_UNSET = frozenset({"table", "corrected_value", "correction_reason"})
LONG_KEPT_WHEN_EMPTY = ("quote", "flag", "note", "as_of")
TABLE_UNSET = frozenset({"note", "corrected_value", "correction_reason"})


def detect_format(file_name: str) -> str:
    extension = file_name.rsplit(".", 1)[-1].lower() if "." in file_name else ""
    if extension not in FORMATS:
        raise ImportFailed([RowError(None, None, f'"{file_name}" is not a CSV, XLSX or JSON file')])
    return extension


def read_dataset(data: bytes, file_name: str) -> tablib.Dataset:
    """The file as a table of strings; refuses empty, oversized, badly encoded or unreadable files."""
    if len(data) > settings.IMPORT_MAX_BYTES:
        limit = settings.IMPORT_MAX_BYTES // (1024 * 1024)
        raise ImportFailed([RowError(None, None, f"the file is over the size limit of {limit} MB; split it")])
    if not data.strip():
        raise ImportFailed([RowError(None, None, "the file is empty")])
    kind = detect_format(file_name)
    try:
        if kind == "xlsx":
            dataset = tablib.Dataset().load(io.BytesIO(data), format="xlsx")
        else:
            try:
                text = data.decode("utf-8-sig")
            except UnicodeDecodeError as exc:
                line = data[: exc.start].count(b"\n") + 1
                raise ImportFailed(
                    [RowError(line, None, "the file is not UTF-8 text; save it as CSV UTF-8 (or XLSX) and retry")]
                ) from None
            if kind == "csv":
                _check_csv_shape(text)
            dataset = tablib.Dataset().load(text, format=kind)
    except ImportFailed:
        raise
    except Exception as exc:
        raise ImportFailed([RowError(None, None, f"the {kind.upper()} file cannot be read: {exc}")]) from None
    if not dataset.headers or dataset.height == 0:
        raise ImportFailed([RowError(None, None, "the file has a header but no rows")])
    if dataset.height > settings.IMPORT_MAX_ROWS:
        raise ImportFailed(
            [
                RowError(
                    None, None, f"the file has {dataset.height:,} rows, over the limit of {settings.IMPORT_MAX_ROWS:,}"
                )
            ]
        )
    return dataset


def _check_csv_shape(text: str) -> None:
    """tablib pads short rows silently; a row with a missing cell must be an error instead."""
    records = list(csv.reader(io.StringIO(text)))
    width = len(records[0]) if records else 0
    errors = [
        RowError(number, None, f"{len(record)} cells but the header has {width} columns")
        for number, record in enumerate(records, start=1)
        if record and len(record) != width
    ]
    if errors:
        raise ImportFailed(errors)


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def long_rows(dataset: tablib.Dataset, lookup: CatalogLookup) -> list[ObservationRow]:
    """One observation row per data row; the header names the columns (row numbers count the header as 1).

    Column names match whatever their case; errors name the file's own header.
    """
    own = [_text(h) for h in dataset.headers]
    known = set(LONG_REQUIRED + LONG_OPTIONAL) | set(lookup.dimensions)
    names = [h.lower() if h.lower() in known else h for h in own]
    errors = []
    missing = [required for required in LONG_REQUIRED if required not in names]
    if missing:
        line = _header_line(dataset, LONG_REQUIRED)
        if line:
            raise ImportFailed([RowError(1, None, _header_hint(line))])
    for required in missing:
        errors.append(RowError(1, required, "missing column (required: " + ", ".join(LONG_REQUIRED) + ")"))
    dimension_columns = [h for h in names if h in lookup.dimensions]
    for name, header in zip(names, own, strict=True):
        if name not in known:
            errors.append(
                RowError(
                    1,
                    header,
                    "unknown column: not a field and not a dimension code "
                    f"(dimensions: {', '.join(sorted(lookup.dimensions))})",
                )
            )
    if errors:
        raise ImportFailed(errors)
    columns = {name: header for name, header in zip(names, own, strict=True) if name != header}
    columns = columns or None  # shared by every row: errors name the file's own header
    rows = []
    for number, values in enumerate(dataset, start=2):
        cell = {h: _text(v) for h, v in zip(names, values, strict=False)}
        rows.append(
            ObservationRow(
                indicator=cell["indicator"],
                source=cell["source"],
                year=cell["year"],
                value_text=cell["value"],
                members={d: cell[d] for d in dimension_columns if cell.get(d)},
                period=cell.get("period") or Period.ANNUAL,
                since=cell.get("since") or None,
                as_of=cell.get("as_of") or None,
                qualifier=cell.get("qualifier") or Qualifier.EXACT,
                quote=cell.get("quote") or f"imported row {number}",
                flag=cell.get("flag", ""),
                note=cell.get("note", ""),
                row=number,
                columns=columns,
                unset=LONG_UNSET | {name for name in LONG_KEPT_WHEN_EMPTY if not cell.get(name)},
            )
        )
    return rows


def _header_line(dataset: tablib.Dataset, wanted, looked_at: int = 10) -> int | None:
    """The line (1 = the first) of the first of the first rows that holds all ``wanted`` names, if any."""
    for number, values in enumerate(dataset[:looked_at], start=2):
        cells = {_text(v).lower() for v in values}
        if all(name.lower() in cells for name in wanted):
            return number
    return None


def _header_hint(line: int) -> str:
    above = line - 1
    return (
        f"the header is on line {line}, not on the first line: delete the {above} line{'s' if above > 1 else ''} "
        "above it (a title?) and upload the file again"
    )


@dataclass
class TableOptions:
    indicator: str
    year: int
    source: str
    rows: str
    columns: str | None = None
    title: str = ""


def table_rows(dataset: tablib.Dataset, options: TableOptions) -> list[ObservationRow]:
    """A printed table: first column row labels, other columns the column members (or Total)."""
    headers = [_text(h) for h in dataset.headers]
    spec = TableSpec(
        source=options.source,
        year=options.year,
        rows=options.rows,
        columns=options.columns,
        indicator=options.indicator,
        title=options.title
        or f"{options.indicator} {options.year} by {options.rows}"
        + (f" and {options.columns}" if options.columns else ""),
    )
    empty = [number for number, h in enumerate(headers[1:], start=2) if not h]
    if empty:
        line = _table_header_line(dataset)
        if line:
            raise ImportFailed([RowError(1, None, _header_hint(line))])
        raise ImportFailed(
            [RowError(1, None, f"column {n} has no header (the member or Total it counts)") for n in empty]
        )
    body = [[_text(v) for v in values] for values in dataset]
    rows, errors = table_observation_rows(
        spec=spec, header=headers[1:], body=body, first_row=2, row_header=headers[0] or options.rows
    )
    if errors:
        raise ImportFailed(errors)
    # A table file carries figures only: its title (when not typed), flags and notes stay as stored.
    unset = TABLE_UNSET | ({"table"} if not options.title else set())
    for row in rows:
        row.unset = unset | ({"flag"} if not row.flag else set())
    return rows


def _table_header_line(dataset: tablib.Dataset, looked_at: int = 10) -> int | None:
    """The first of the first rows that reads as a table header: every cell filled, not all numbers."""
    for number, values in enumerate(dataset[:looked_at], start=2):
        cells = [_text(v) for v in values]
        if all(cells) and not all(c.replace(",", "").replace(".", "").isdigit() for c in cells[1:]):
            return number
    return None
