"""The whole warehouse as one flat table: the open-data download, the admin's and `manage.py export_facts`.

PostgreSQL builds the rows (member labels, decimals without storage zeros, spreadsheet-safe text) in
one query: CSV comes straight out of ``COPY ... TO STDOUT``; JSON and XLSX (openpyxl's write-only
mode) read the same query through a server-side cursor. Nothing is held per row, so ten million
observations export in flat memory.
"""

from __future__ import annotations

import csv
import io
import json
import tempfile
from collections.abc import Iterator
from typing import IO

import openpyxl
import tablib
from django.db import connection, transaction
from django.db.models import QuerySet
from django.http import FileResponse, StreamingHttpResponse

from stats.lookups import CatalogLookup
from stats.models import Qualifier

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
CONTENT_TYPES = {
    "csv": "text/csv",
    "json": "application/json",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
FETCH_ROWS = 5000


def escape_formula(value):
    """Text that a spreadsheet would run as a formula is prefixed with a quote."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


_SQL_FORMULA_STARTS = ", ".join("E'" + c.encode("unicode_escape").decode() + "'" for c in FORMULA_STARTS)


def _escaped(expression: str) -> str:
    """``escape_formula`` in SQL."""
    return f"CASE WHEN left({expression}, 1) IN ({_SQL_FORMULA_STARTS}) THEN '''' || {expression} ELSE {expression} END"


def _dimensions() -> list:
    return sorted(CatalogLookup.load().dimensions.values(), key=lambda d: (d.order, d.code))


def facts_headers() -> list[str]:
    """The columns of the flat facts table: one per dimension between the indicator and the value."""
    return ["observation_id", "source_document", "source_slug", "source_title", "year", "period", "since",
            "as_of", "topic", "indicator_code", "indicator_name", "unit", *[d.code for d in _dimensions()], "value",
            "value_text", "qualifier", "corrected_value", "display_value", "correction_reason", "flag", "note",
            "preferred", "table", "quote", "also_printed_as"]  # fmt: skip


def _facts_query(queryset, safe_for_spreadsheets: bool, for_csv: bool) -> tuple[list[str], str, list]:
    """The header, and the query (with its parameters) giving the rows of the facts table.

    ``for_csv``: every column as text, empty text as NULL (COPY then writes it unquoted, as Python's
    csv module does) and the preferred flag as True/False.
    """
    dimensions = _dimensions()
    headers = facts_headers()

    def text(expression: str, escape: bool = True) -> str:
        expression = _escaped(expression) if escape and safe_for_spreadsheets else expression
        return f"NULLIF({expression}, '')" if for_csv else expression

    def decimal(column: str) -> str:
        return text(f"coalesce(trim_scale({column})::text, '')")

    columns = [
        "o.id", text("s.document"), text("s.slug"), text("s.title"), "o.year", "o.period", "o.since",
        "to_char(o.as_of, 'YYYY-MM-DD')", text("t.code"), text("i.code"), text("i.name"), "i.unit",
        *[text(f"b.cells[{n}]") for n in range(1, len(dimensions) + 1)],
        decimal("o.value"), text("o.value_text"), "o.qualifier", decimal("o.corrected_value"),
        decimal("coalesce(o.corrected_value, o.value)"), text("o.correction_reason"), text("o.flag", escape=False),
        text("o.note"),
        "CASE WHEN o.is_preferred THEN 'True' ELSE 'False' END" if for_csv else "o.is_preferred",
        text('o."table"'), text("o.quote"), text("coalesce(r.also, '')"),
    ]  # fmt: skip
    params: list = []
    where = ""
    if queryset is not None and queryset.query.where:
        subquery, found = queryset.values("pk").query.sql_with_params()
        where, params = f"WHERE o.id IN ({subquery})", list(found)
    labels = ", ".join(["(%s, %s)"] * len(Qualifier.choices))
    query = f"""
        WITH picked AS MATERIALIZED (SELECT o.* FROM stats_observation o {where}),
        breakdowns AS MATERIALIZED (
          SELECT d.member_ids, (SELECT array_agg(coalesce(m.label, '') ORDER BY dim.n)
                                  FROM unnest(%s::bigint[]) WITH ORDINALITY dim(id, n)
                                  LEFT JOIN stats_member m ON m.dimension_id = dim.id AND m.id = ANY (d.member_ids)
                               ) AS cells
            FROM (SELECT DISTINCT member_ids FROM picked) d
        ),
        restated AS (
          SELECT r.observation_id, string_agg(r.value_text || ' (' || q.label || ')', '; ' ORDER BY r.id) AS also
            FROM stats_restatement r JOIN (VALUES {labels}) q(code, label) ON q.code = r.qualifier
           GROUP BY r.observation_id
        )
        SELECT {", ".join(columns)}
          FROM picked o
          JOIN stats_source s ON s.id = o.source_id
          JOIN stats_indicator i ON i.id = o.indicator_id
          JOIN stats_topic t ON t.id = i.topic_id
          JOIN breakdowns b ON b.member_ids = o.member_ids
          LEFT JOIN restated r ON r.observation_id = o.id
         ORDER BY s.edition, s.slug, i.code, o.year, o.id
    """
    params = [*params, [d.id for d in dimensions], *[v for choice in Qualifier.choices for v in choice]]
    return headers, query, params


def facts_rows(queryset=None, *, safe_for_spreadsheets: bool = True) -> tuple[list[str], Iterator[list]]:
    """The header and the rows (a generator over a server-side cursor) of the flat facts table:
    one row per observation, one column per dimension holding the member's label."""
    headers, query, params = _facts_query(queryset, safe_for_spreadsheets, for_csv=False)

    def generate() -> Iterator[list]:
        with transaction.atomic():
            connection.ensure_connection()
            with connection.connection.cursor(name="facts_export") as cursor:
                cursor.itersize = FETCH_ROWS
                cursor.execute(query, params)
                for row in cursor:
                    yield list(row)

    return headers, generate()


def facts_dataset(queryset=None, *, safe_for_spreadsheets: bool = True) -> tablib.Dataset:
    """The facts table in memory (for small selections; large ones go through ``write_facts``)."""
    headers, rows = facts_rows(queryset, safe_for_spreadsheets=safe_for_spreadsheets)
    data = tablib.Dataset(headers=headers, title="facts")
    for row in rows:
        data.append(row)
    return data


def facts_csv(queryset=None) -> Iterator[bytes]:
    """The facts table as UTF-8 CSV, in the blocks PostgreSQL's COPY sends."""
    headers, query, params = _facts_query(queryset, safe_for_spreadsheets=True, for_csv=True)
    header = io.StringIO()
    csv.writer(header, lineterminator="\n").writerow(headers)
    yield header.getvalue().encode()
    with (
        transaction.atomic(),
        connection.cursor() as cursor,
        cursor.cursor.copy(f"COPY ({query}) TO STDOUT WITH (FORMAT csv)", params) as copy,
    ):
        for block in copy:
            yield bytes(block)


def facts_bytes(queryset, file_format: str) -> Iterator[bytes]:
    """The facts table as CSV or JSON, in pieces."""
    if file_format == "csv":
        yield from facts_csv(queryset)
    elif file_format == "json":
        headers, rows = facts_rows(queryset)
        yield b"["
        for n, row in enumerate(rows):
            yield ((",\n" if n else "\n") + json.dumps(dict(zip(headers, row, strict=True)), default=str)).encode()
        yield b"\n]\n"
    else:
        raise ValueError(f"unknown format {file_format!r} (csv, json or xlsx)")


def write_facts(out: IO[bytes], file_format: str, queryset=None) -> None:
    """Write the facts table to the binary stream ``out`` as it is read (CSV, JSON or XLSX)."""
    if file_format != "xlsx":
        for block in facts_bytes(queryset, file_format):
            out.write(block)
        return
    headers, rows = facts_rows(queryset)
    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet("facts")
    sheet.append(headers)
    for row in rows:
        sheet.append(row)
    book.save(out)


def facts_response(queryset: QuerySet, file_format: str, file_name: str = "observations"):
    """An HTTP download of the facts table that streams: CSV and JSON as read, XLSX from a temporary file."""
    if file_format == "xlsx":
        spool = tempfile.TemporaryFile()  # noqa: SIM115 (the response closes it once sent)
        write_facts(spool, "xlsx", queryset)
        spool.seek(0)
        response = FileResponse(spool, content_type=CONTENT_TYPES["xlsx"])
    else:
        response = StreamingHttpResponse(facts_bytes(queryset, file_format), content_type=CONTENT_TYPES[file_format])
    response["Content-Disposition"] = f'attachment; filename="{file_name}.{file_format}"'
    return response
