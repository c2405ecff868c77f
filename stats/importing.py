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
import functools
import io
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import openpyxl
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


@functools.cache
def _long_unset(empty: tuple[str, ...]) -> frozenset[str]:
    """One shared set per combination of empty optional columns (not one per row of a large file)."""
    return LONG_UNSET | frozenset(empty)


TABLE_UNSET = frozenset({"note", "corrected_value", "correction_reason"})


def detect_format(file_name: str) -> str:
    extension = file_name.rsplit(".", 1)[-1].lower() if "." in file_name else ""
    if extension not in FORMATS:
        raise ImportFailed([RowError(None, None, f'"{file_name}" is not a CSV, XLSX or JSON file')])
    return extension


class TableFile:
    """An import file's header and rows, read as they are iterated (one pass).

    CSV is decoded and parsed line by line and XLSX read in openpyxl's read-only mode, so memory does
    not grow with the file; the row limit is checked as rows are read and stops the read when crossed.
    Blank rows are skipped.
    """

    def __init__(self, records: Iterator[list], kind: str) -> None:
        self.kind = kind
        # The first cell tells for most rows; a row is blank when every cell is.
        self._records = (r for r in records if r and (r[0] not in (None, "") or any(v not in (None, "") for v in r)))
        header = self._read(lambda: next(self._records, None))
        if header is None:
            raise ImportFailed([RowError(None, None, "the file is empty")])
        while header and header[-1] in (None, ""):
            header.pop()
        self.headers = header
        first = self._read(lambda: next(self._records, None))
        if first is None:
            raise ImportFailed([RowError(None, None, "the file has a header but no rows")])
        self._ahead = [first]  # rows read ahead (the first, and any head() looked at), not yet iterated

    def head(self, count: int) -> list[list]:
        """The first ``count`` rows, read ahead and still given by the iteration (to look for a header below
        a title line)."""
        while len(self._ahead) < count:
            record = self._read(lambda: next(self._records, None))
            if record is None:
                break
            self._ahead.append(record)
        return self._ahead[:count]

    def _read(self, step):
        try:
            return step()
        except ImportFailed:
            raise
        except Exception as exc:
            raise ImportFailed([RowError(None, None, f"the {self.kind.upper()} file cannot be read: {exc}")]) from None

    def __iter__(self) -> Iterator[list]:
        limit = settings.IMPORT_MAX_ROWS
        count = 0

        def over() -> ImportFailed:
            return ImportFailed(
                [RowError(None, None, f"the file has more than {limit:,} rows, the limit of one import; split it")]
            )

        while self._ahead:
            count += 1
            if count > limit:
                raise over()
            yield self._ahead.pop(0)
        try:
            for record in self._records:
                count += 1
                if count > limit:
                    raise over()
                yield record
        except ImportFailed:
            raise
        except Exception as exc:
            raise ImportFailed([RowError(None, None, f"the {self.kind.upper()} file cannot be read: {exc}")]) from None


def read_dataset(data: bytes | Path | BinaryIO, file_name: str) -> TableFile:
    """The file's header and rows (read as iterated); refuses empty, oversized, badly encoded or unreadable files.

    ``data`` is the file's content, its path or an open binary file at its start (both read without
    loading the file whole).
    """
    kind = detect_format(file_name)
    if isinstance(data, Path):
        handle: BinaryIO = data.open("rb")
    elif isinstance(data, bytes | bytearray | memoryview):
        handle = io.BytesIO(data)
    else:
        handle = data
    size = handle.seek(0, io.SEEK_END)
    handle.seek(0)
    if size > settings.IMPORT_MAX_BYTES:
        if handle is not data:
            handle.close()
        raise ImportFailed([RowError(None, None, f"the file is over the size limit of {_megabytes()} MB; split it")])
    if kind == "xlsx":
        return TableFile(_xlsx_records(handle), kind)
    if kind == "csv":
        return TableFile(_csv_records(handle), kind)
    raw = handle.read()  # JSON is parsed whole: at most IMPORT_MAX_BYTES
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _not_utf8(raw[: exc.start].count(b"\n") + 1) from None
    if not text.strip():
        raise ImportFailed([RowError(None, None, "the file is empty")])
    try:
        dataset = tablib.Dataset().load(text, format=kind)
    except Exception as exc:
        raise ImportFailed([RowError(None, None, f"the {kind.upper()} file cannot be read: {exc}")]) from None
    return TableFile(iter([list(dataset.headers or []), *map(list, dataset)]), kind)


def _megabytes() -> int:
    return settings.IMPORT_MAX_BYTES // (1024 * 1024)


def _not_utf8(line: int) -> ImportFailed:
    return ImportFailed([RowError(line, None, "the file is not UTF-8 text; save it as CSV UTF-8 (or XLSX) and retry")])


def _csv_records(handle: BinaryIO) -> Iterator[list]:
    """CSV records, decoded as they are read; a record whose cell count differs from the header's is an error."""
    width = None
    text = io.TextIOWrapper(handle, encoding="utf-8-sig", newline="")
    try:
        for number, record in enumerate(csv.reader(text), start=1):
            if width is None:
                width = len(record)
            elif record and len(record) != width:
                raise ImportFailed([RowError(number, None, f"{len(record)} cells but the header has {width} columns")])
            yield record
    except UnicodeDecodeError:
        text.detach()  # the file stays open, to find the line
        raise _not_utf8(_first_line_not_utf8(handle)) from None


def _first_line_not_utf8(handle: BinaryIO) -> int:
    """The line that does not decode (the text reader decodes in blocks, so it cannot say)."""
    handle.seek(0)
    for number, raw in enumerate(handle, start=1):
        try:
            raw.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError:
            return number
    return 1


def _xlsx_records(handle: BinaryIO) -> Iterator[list]:
    """The active sheet's rows in openpyxl's read-only mode, after checking the unpacked size.

    The zip's own sizes are what zipfile lets each member unpack to, so the check bounds the read.
    """
    try:
        unpacked = sum(member.file_size for member in zipfile.ZipFile(handle).infolist())
    except zipfile.BadZipFile as exc:
        raise ImportFailed([RowError(None, None, f"the XLSX file cannot be read: {exc}")]) from None
    if unpacked > settings.IMPORT_MAX_BYTES:
        raise ImportFailed(
            [
                RowError(
                    None,
                    None,
                    f"the XLSX file unpacks to {unpacked // (1024 * 1024):,} MB, over the size limit of "
                    f"{_megabytes()} MB; split it",
                )
            ]
        )
    book = openpyxl.load_workbook(handle, read_only=True, data_only=True)
    try:
        for values in book.active.iter_rows(values_only=True):
            yield list(values)
    finally:
        book.close()


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def long_rows(dataset: TableFile, lookup: CatalogLookup) -> Iterator[ObservationRow]:
    """One observation row per data row, as the file is read; the header names the columns (row numbers
    count the header as 1).

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
    # Each field's cell by position (a name given twice: its last cell, as a dict of the row would keep),
    # worked out once for the file rather than a dict built per row.
    at = {name: i for i, name in enumerate(names)}
    width = len(names)
    indicator, source, year, value = (at[name] for name in LONG_REQUIRED)
    period, since, as_of, qualifier, quote, flag, note = (at.get(name) for name in LONG_OPTIONAL)
    dimensions = [(name, at[name]) for name in dict.fromkeys(dimension_columns)]
    kept = [(name, at.get(name)) for name in LONG_KEPT_WHEN_EMPTY]
    annual, exact = Period.ANNUAL, Qualifier.EXACT
    for number, values in enumerate(dataset, start=2):
        cells = [v.strip() if v.__class__ is str else _text(v) for v in values]
        if len(cells) < width:  # a short XLSX row: its missing cells are empty
            cells += [""] * (width - len(cells))
        yield ObservationRow(
            indicator=cells[indicator],
            source=cells[source],
            year=cells[year],
            value_text=cells[value],
            members={name: text for name, i in dimensions if (text := cells[i])},
            period=(cells[period] if period is not None else "") or annual,
            since=(cells[since] if since is not None else "") or None,
            as_of=(cells[as_of] if as_of is not None else "") or None,
            qualifier=(cells[qualifier] if qualifier is not None else "") or exact,
            quote=(cells[quote] if quote is not None else "") or f"imported row {number}",
            flag=cells[flag] if flag is not None else "",
            note=cells[note] if note is not None else "",
            row=number,
            columns=columns,
            unset=_long_unset(tuple(name for name, i in kept if i is None or not cells[i])),
        )


def _header_line(dataset: TableFile, wanted, looked_at: int = 10) -> int | None:
    """The line (1 = the first) of the first of the first rows that holds all ``wanted`` names, if any."""
    for number, values in enumerate(dataset.head(looked_at), start=2):
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


def table_rows(dataset: TableFile, options: TableOptions) -> list[ObservationRow]:
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
    if empty or len(headers) < 2:  # a title line's empty cells are dropped: it reads as a one-cell header
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


def _table_header_line(dataset: TableFile, looked_at: int = 10) -> int | None:
    """The first of the first rows that reads as a table header: every cell filled, not all numbers."""
    for number, values in enumerate(dataset.head(looked_at), start=2):
        cells = [_text(v) for v in values]
        if all(cells) and not all(c.replace(",", "").replace(".", "").isdigit() for c in cells[1:]):
            return number
    return None
