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
from django.conf import settings
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
CHUNK_BYTES = 256 * 1024
PIECE_ROWS = 50_000  # rows of one piece of a whole-table export read in parallel


def escape_formula(value):
    """Text that a spreadsheet would run as a formula is prefixed with a quote."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


_SQL_FORMULA_STARTS = ", ".join(str(ord(c)) for c in FORMULA_STARTS)


def _escaped(expression: str) -> str:
    """``escape_formula`` in SQL (the first character's code: one integer test per value)."""
    return f"CASE WHEN ascii({expression}) IN ({_SQL_FORMULA_STARTS}) THEN '''' || {expression} ELSE {expression} END"


def _dimensions() -> list:
    return sorted(CatalogLookup.load().dimensions.values(), key=lambda d: (d.order, d.code))


def facts_headers() -> list[str]:
    """The columns of the flat facts table: one per dimension between the indicator and the value."""
    return ["observation_id", "source_document", "source_slug", "source_title", "year", "period", "since",
            "as_of", "topic", "indicator_code", "indicator_name", "unit", *[d.code for d in _dimensions()], "value",
            "value_text", "qualifier", "corrected_value", "display_value", "correction_reason", "flag", "note",
            "preferred", "table", "quote", "also_printed_as"]  # fmt: skip


def _facts_query(
    queryset, safe_for_spreadsheets: bool, for_csv: bool, preferred_only: bool = False, pairs: list | None = None
) -> tuple[list[str], str, list]:
    """The header, and the query (with its parameters) giving the rows of the facts table.

    ``preferred_only``: only the preferred source's figure of each fact (the whole table's fast path
    keeps it; a queryset filtering on it would be read as a selection, sorted at once).

    ``pairs``: the whole table's rows of these (source id, indicator id) pairs only, in this order
    (a piece of a parallel export).

    ``for_csv``: every column as text, empty text as NULL (COPY then writes it unquoted, as Python's
    csv module does) and the preferred flag as True/False.
    """
    dimensions = _dimensions()
    headers = facts_headers()

    def text(expression: str, escape: bool = True) -> str:
        expression = _escaped(expression) if escape and safe_for_spreadsheets else expression
        return f"NULLIF({expression}, '')" if for_csv else expression

    def decimal(column: str) -> str:  # made text once, in the inner query: the CASE reads it twice
        return text(f"coalesce({column}, '')")

    columns = [
        "o.id", "s.document", "s.slug", "s.title", "o.year", "o.period", "o.since",
        "to_char(o.as_of, 'YYYY-MM-DD')", "i.topic", "i.code", "i.name", "i.unit",
        *[f"b.member_{n}" for n in range(len(dimensions))],
        decimal("o.value_digits"), text("o.value_text"), "o.qualifier", decimal("o.corrected_digits"),
        decimal("o.display_digits"),
        text("o.correction_reason"), text("o.flag", escape=False), text("o.note"),
        "CASE WHEN o.is_preferred THEN 'True' ELSE 'False' END" if for_csv else "o.is_preferred",
        text('o."table"'), text("o.quote"), text("coalesce(o.also, '')"),
    ]  # fmt: skip
    # A breakdown's label in each dimension's column (a breakdown has at most one member per dimension).
    cells = [
        text(f"coalesce(max(m.label) FILTER (WHERE m.dimension_id = {int(d.id)}), '')") + f" AS member_{n}"
        for n, d in enumerate(dimensions)
    ]
    # The other printings of a figure, looked up only for the few figures that have any (a hashed subplan).
    also = f"""CASE WHEN o.id IN (SELECT observation_id FROM stats_restatement) THEN (
        SELECT string_agg(r.value_text || ' (' || q.label || ')', '; ' ORDER BY r.id)
          FROM stats_restatement r JOIN (VALUES {", ".join(["(%s, %s)"] * len(Qualifier.choices))}) q(code, label)
               ON q.code = r.qualifier
         WHERE r.observation_id = o.id) END"""
    own = f"""o.id, o.source_id, o.indicator_id, o.member_ids, o.year, o.period, o.since, o.as_of,
             trim_scale(o.value)::text AS value_digits, o.value_text, o.qualifier,
             trim_scale(o.corrected_value)::text AS corrected_digits,
             trim_scale(coalesce(o.corrected_value, o.value))::text AS display_digits,
             o.correction_reason, o.flag, o.note,
             o.is_preferred, o."table", o.quote, {also} AS also"""
    params: list = [v for choice in Qualifier.choices for v in choice]
    preferred = " AND o.is_preferred" if preferred_only else ""
    if queryset is not None and queryset.query.where:
        # A selection: its rows, sorted on integer keys (each source's and indicator's rank, not their text).
        subquery, found = queryset.values("pk").query.sql_with_params()
        params += found
        ordered = f"""
            SELECT {own}, sr.rank AS source_rank, ir.rank AS indicator_rank
              FROM stats_observation o
              JOIN source_rank sr ON sr.id = o.source_id
              JOIN indicator_rank ir ON ir.id = o.indicator_id
             WHERE o.id IN ({subquery}){preferred}
             ORDER BY sr.rank, ir.rank, o.year, o.id"""
    else:
        # The whole table: read source by source and indicator by indicator in their order, so only each
        # pair's rows are sorted (by year and id), never the whole table at once. The pair is one range of
        # observation_source_indicator; written as a range of the row (source, indicator), the condition
        # can use no other index (the fact's unique index, which ends with the source, would read the
        # indicator's figures of every source for each pair).
        every_pair = """
            SELECT sr.id AS source_id, sr.rank AS source_rank, ir.id AS indicator_id, ir.rank AS indicator_rank
              FROM source_rank sr CROSS JOIN indicator_rank ir ORDER BY sr.rank, ir.rank"""
        given_pairs = """SELECT source_id, n AS source_rank, indicator_id, 0 AS indicator_rank
                           FROM unnest(%s::bigint[], %s::bigint[]) WITH ORDINALITY p(source_id, indicator_id, n)"""
        if pairs is not None:
            params = [[s for s, _ in pairs], [i for _, i in pairs], *params]
        ordered = f"""
            SELECT o.*, p.source_rank, p.indicator_rank
              FROM ({every_pair if pairs is None else given_pairs}) p
              CROSS JOIN LATERAL (
                SELECT {own} FROM stats_observation o
                 WHERE (o.source_id, o.indicator_id) >= (p.source_id, p.indicator_id)
                   AND (o.source_id, o.indicator_id) <= (p.source_id, p.indicator_id){preferred} OFFSET 0
              ) o
             ORDER BY p.source_rank, p.indicator_rank, o.year, o.id"""
    # Sorted first, formatted after: nested loops that keep the order add the catalog's text and each
    # breakdown's labels, made once per source, indicator and breakdown (Memoize), so the per-row work
    # is the formatting of the observation's own columns.
    query = f"""
        WITH source_rank AS MATERIALIZED (
          SELECT id, dense_rank() OVER (ORDER BY edition, slug) AS rank FROM stats_source),
        indicator_rank AS MATERIALIZED (
          SELECT id, dense_rank() OVER (ORDER BY code) AS rank FROM stats_indicator)
        SELECT {", ".join(columns)}
          FROM ({ordered}) o
          CROSS JOIN LATERAL (
            SELECT {text("s.document")} AS document, {text("s.slug")} AS slug, {text("s.title")} AS title
              FROM stats_source s WHERE s.id = o.source_id OFFSET 0
          ) s
          CROSS JOIN LATERAL (
            SELECT {text("t.code")} AS topic, {text("i.code")} AS code, {text("i.name")} AS name, i.unit
              FROM stats_indicator i JOIN stats_topic t ON t.id = i.topic_id WHERE i.id = o.indicator_id OFFSET 0
          ) i
          CROSS JOIN LATERAL (
            SELECT {", ".join(cells) or "NULL"} FROM stats_member m WHERE m.id = ANY (o.member_ids)
          ) b
         ORDER BY o.source_rank, o.indicator_rank, o.year, o.id
    """
    return headers, query, params


def facts_rows(
    queryset=None, *, safe_for_spreadsheets: bool = True, preferred_only: bool = False
) -> tuple[list[str], Iterator[list]]:
    """The header and the rows (a generator over a server-side cursor) of the flat facts table:
    one row per observation, one column per dimension holding the member's label."""
    headers, query, params = _facts_query(queryset, safe_for_spreadsheets, for_csv=False, preferred_only=preferred_only)

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


def facts_csv(queryset=None, *, preferred_only: bool = False) -> Iterator[bytes]:
    """The facts table as UTF-8 CSV, as PostgreSQL's COPY writes it, in pieces of about CHUNK_BYTES.

    COPY sends one message per row: gathered, a million rows are a few hundred writes to the file or
    the socket, not a million. The whole table, read outside any other transaction, is read in
    pieces by settings.EXPORT_READERS connections at once (stats.exports_parallel).
    """
    header = io.StringIO()
    csv.writer(header, lineterminator="\n").writerow(facts_headers())
    yield header.getvalue().encode()
    if queryset is None and not connection.in_atomic_block and settings.EXPORT_READERS > 1:
        yield from _whole_table_in_pieces(preferred_only)
        return
    _, query, params = _facts_query(queryset, True, for_csv=True, preferred_only=preferred_only)
    with transaction.atomic(), connection.cursor() as cursor:
        yield from copy_chunks(cursor.cursor, query, params)


def copy_chunks(cursor, query: str, params: list) -> Iterator[bytes]:
    """``COPY (query) TO STDOUT`` as CSV, in pieces of about CHUNK_BYTES."""
    chunk = bytearray()
    with cursor.copy(f"COPY ({query}) TO STDOUT WITH (FORMAT csv)", params) as copy:
        for row in copy:
            chunk += row
            if len(chunk) >= CHUNK_BYTES:
                yield bytes(chunk)
                chunk.clear()
    if chunk:
        yield bytes(chunk)


def _whole_table_in_pieces(preferred_only: bool) -> Iterator[bytes]:
    """The whole table cut into pieces of about PIECE_ROWS rows (whole source-indicator pairs, in the
    export's order), read by several connections sharing this transaction's snapshot."""
    from stats.exports_parallel import read_in_parallel

    preferred = " WHERE o.is_preferred" if preferred_only else ""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        cursor.execute("SELECT pg_export_snapshot()")
        snapshot = cursor.fetchone()[0]
        # Each pair's rows, in the export's order (the same sort as the ranks of ``_facts_query``).
        cursor.execute(f"""
            SELECT o.source_id, o.indicator_id, count(*) FROM stats_observation o
              JOIN stats_source s ON s.id = o.source_id JOIN stats_indicator i ON i.id = o.indicator_id{preferred}
             GROUP BY o.source_id, o.indicator_id, s.edition, s.slug, i.code
             ORDER BY s.edition, s.slug, i.code""")  # fmt: skip
        in_order = cursor.fetchall()
        pieces: list[list] = [[]]
        rows_in_piece = 0
        for source, indicator, rows in in_order:
            if rows_in_piece >= PIECE_ROWS and pieces[-1]:
                pieces.append([])
                rows_in_piece = 0
            pieces[-1].append((source, indicator))
            rows_in_piece += rows
        queries = [_facts_query(None, True, for_csv=True, preferred_only=preferred_only, pairs=p)[1:] for p in pieces]
        if len(queries) == 1:  # a small table: read here, in the same snapshot
            yield from copy_chunks(cursor.cursor, *queries[0])
            return
        yield from read_in_parallel(queries, snapshot, readers=settings.EXPORT_READERS)


def facts_bytes(queryset, file_format: str, *, preferred_only: bool = False) -> Iterator[bytes]:
    """The facts table as CSV or JSON, in pieces."""
    if file_format == "csv":
        yield from facts_csv(queryset, preferred_only=preferred_only)
    elif file_format == "json":
        headers, rows = facts_rows(queryset, preferred_only=preferred_only)
        yield b"["
        for n, row in enumerate(rows):
            yield ((",\n" if n else "\n") + json.dumps(dict(zip(headers, row, strict=True)), default=str)).encode()
        yield b"\n]\n"
    else:
        raise ValueError(f"unknown format {file_format!r} (csv, json or xlsx)")


def write_facts(out: IO[bytes], file_format: str, queryset=None, *, preferred_only: bool = False) -> None:
    """Write the facts table to the binary stream ``out`` as it is read (CSV, JSON or XLSX)."""
    if file_format != "xlsx":
        for block in facts_bytes(queryset, file_format, preferred_only=preferred_only):
            out.write(block)
        return
    headers, rows = facts_rows(queryset, preferred_only=preferred_only)
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
