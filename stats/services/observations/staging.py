"""The import's staging table: every validated row COPYed in as it is validated, then read by SQL.

Nothing is kept per row in Python between validation and the write: duplicates, what is new, what
matches a stored figure and the merge are worked out by PostgreSQL against this table, and only the
rows some step must look at in Python (a stored figure to compare, a duplicate, a total to add up) are
read back. The table lives in the import's transaction (ON COMMIT DROP), so a failed or killed import
leaves nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from django.db import connection

from stats.services.errors import ImportFailed, RowError
from stats.services.observations.rows import COMPARED_FIELDS, FIELD_NAMES, ObservationRow, ValidRow

STAGING = "import_staging"
MATCHED = "import_matched"  # staged row (seq) -> the stored observation of its fact and source

# seq: the row's place in the file; row_no / row_label: ObservationRow.row (a line number or a label);
# unset: ObservationRow.unset as bits of FIELD_NAMES; then the ids and the values in FIELD_NAMES order.
COLUMNS = {
    "seq": "integer", "row_no": "bigint", "row_label": "text", "from_table": "boolean", "unset": "integer",
    "indicator_id": "bigint", "source_id": "bigint", "member_ids": "bigint[]",
    "year": "integer", "period": "text", "since": "integer", "as_of": "date", "value": "numeric",
    "value_text": "text", "qualifier": "text", "quote": "text", "table": "text", "flag": "text", "note": "text",
    "corrected_value": "numeric", "correction_reason": "text",
}  # fmt: skip
if tuple(COLUMNS)[8:] != FIELD_NAMES:
    raise ImportError("the staging table's value columns must follow FIELD_NAMES (a ValidRow's values)")
FACT = ("indicator_id", "source_id", "year", "period", "since", "member_ids")
BIT = {name: 1 << i for i, name in enumerate(FIELD_NAMES)}
STORED = ("id", *COMPARED_FIELDS, "version")


def quoted(columns, table: str = "") -> str:
    prefix = f"{table}." if table else ""
    return ", ".join(f'{prefix}"{c}"' for c in columns)


def same_fact(a: str, b: str) -> str:
    """SQL: rows ``a`` and ``b`` are the same fact of the same source (``since`` may be null on both)."""
    return " AND ".join(f"{a}.{c} IS NOT DISTINCT FROM {b}.{c}" if c == "since" else f"{a}.{c} = {b}.{c}" for c in FACT)


class ReadFailed(Exception):
    """The file could not be read to its end (its own ImportFailed, raised as it was iterated)."""

    def __init__(self, failed: ImportFailed) -> None:
        super().__init__(str(failed))
        self.failed = failed


# Memory for the sorts of the import's statements over the staging table (the duplicates, the merge's
# order): at 1,000,000 rows they need 80-170 MB and spill to temporary files with the server's default
# (sorting 1,000,000 staged rows took 0.6-0.9x the time with 256 MB, interleaved A/B on the bench).
# Imports are serialized (stats.services.locking) and bounded by IMPORT_MAX_ROWS.
WORK_MEM = "256MB"


def create() -> None:
    columns = ", ".join(f'"{c}" {t}' for c, t in COLUMNS.items())
    with connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL work_mem = '{WORK_MEM}'")
        cursor.execute(f"CREATE TEMP TABLE {STAGING} ({columns}) ON COMMIT DROP")
        cursor.execute(f"CREATE TEMP TABLE {MATCHED} (seq integer, observation_id bigint) ON COMMIT DROP")


def drop() -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE {MATCHED}, {STAGING}")


def fill(rows: Iterable[ObservationRow], validate: Callable) -> tuple[int, list[RowError]]:
    """Validate each row and COPY the valid ones in, as the rows are read: (rows read, errors).

    Valid rows are copied even after an error, so duplicates and conflicts are reported with it.
    """
    count = 0
    errors: list[RowError] = []
    masks: dict[frozenset, int] = {}
    arrays: dict[tuple, str] = {}  # member_ids as the array's text form, made once per breakdown
    with (
        connection.cursor() as cursor,
        cursor.cursor.copy(f"COPY {STAGING} ({quoted(COLUMNS)}) FROM STDIN") as copy,
    ):
        write_row = copy.write_row
        try:
            for row in rows:
                count += 1
                valid, row_errors = validate(row)
                if valid is None:
                    errors.extend(row_errors)
                    continue
                unset = valid.unset
                mask = masks.get(unset)
                if mask is None:
                    mask = masks[unset] = sum(BIT[name] for name in unset)
                member_ids = valid.member_ids
                array = arrays.get(member_ids)
                if array is None:
                    array = arrays[member_ids] = "{" + ",".join(str(int(i)) for i in member_ids) + "}"
                where = valid.row
                number, label = (where, None) if where.__class__ is int else (None, where)
                write_row((count, number, label, valid.from_table, mask, valid.indicator_id, valid.source_id, array,
                           *valid.values))  # fmt: skip
        except ImportFailed as exc:
            raise ReadFailed(exc) from None
    with connection.cursor() as cursor:
        # Built once the rows are in (cheaper than kept up during the COPY): reading rows back in file
        # order, a page of them or a few by seq, is then an index scan, not a sort of the whole table.
        cursor.execute(f"CREATE UNIQUE INDEX ON {STAGING} (seq)")
        cursor.execute(f"ANALYZE {STAGING}")  # temporary tables are never analysed by autovacuum
    return count, errors


_UNSET: dict[int, frozenset] = {}


def _unset(mask: int) -> frozenset:
    found = _UNSET.get(mask)
    if found is None:
        found = _UNSET[mask] = frozenset(name for name, bit in BIT.items() if mask & bit)
    return found


def valid_row(record) -> ValidRow:
    """A staged row (the COLUMNS from ``row_no`` on) as the ValidRow it was."""
    row_no, row_label, from_table, unset, indicator_id, source_id, member_ids, *values = record
    return ValidRow.restored(
        row_no if row_no is not None else row_label, from_table, _unset(unset), indicator_id, source_id,
        tuple(member_ids), tuple(values),
    )  # fmt: skip


def match_stored() -> int:
    """Find each staged row's stored observation (same fact, same source), if any; how many have one."""
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {MATCHED}")
        cursor.execute(
            f"INSERT INTO {MATCHED} (seq, observation_id) "
            f"SELECT s.seq, o.id FROM {STAGING} s JOIN stats_observation o ON {same_fact('s', 'o')}"
        )
        count = cursor.rowcount
        cursor.execute(f"ANALYZE {MATCHED}")
    return count


def staged_rows(where: str = "TRUE", params=(), limit: int | None = None) -> Iterator[tuple]:
    """(seq, ValidRow as staged, the stored observation (STORED values) or None) in file order.

    Read through a server-side cursor, so a long result is not held whole.
    """
    sql = (
        f"SELECT s.seq, {quoted(list(COLUMNS)[1:], 's')}, {quoted(STORED, 'o')} FROM {STAGING} s "
        f"LEFT JOIN {MATCHED} m ON m.seq = s.seq LEFT JOIN stats_observation o ON o.id = m.observation_id "
        f"WHERE {where} ORDER BY s.seq" + (f" LIMIT {int(limit)}" if limit is not None else "")
    )
    width = len(COLUMNS) - 1
    with connection.connection.cursor(name="import_staged_rows") as cursor:
        cursor.itersize = 5_000
        cursor.execute(sql, params)
        for record in cursor:
            stored = record[width + 1 :]
            yield record[0], valid_row(record[1 : width + 1]), (stored if stored[0] is not None else None)


def count_rows(where: str = "TRUE", params=()) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {STAGING} s LEFT JOIN {MATCHED} m ON m.seq = s.seq WHERE {where}", params)
        return cursor.fetchone()[0]


def duplicate_groups() -> list[list[int]]:
    """The rows (seq, in file order) of each fact and source given more than once."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT array_agg(seq ORDER BY seq) FROM {STAGING} GROUP BY {', '.join(FACT)} HAVING count(*) > 1 "
            "ORDER BY min(seq)"
        )
        return [r[0] for r in cursor.fetchall()]


def delete(seqs: list[int]) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {STAGING} WHERE seq = ANY (%s)", [seqs])


def breakdown_sizes() -> dict[int, set[int]]:
    """Indicator id -> the numbers of dimensions its staged rows are broken down by."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT indicator_id, array_agg(DISTINCT cardinality(member_ids)) FROM {STAGING} GROUP BY indicator_id"
        )
        return {indicator_id: set(sizes) for indicator_id, sizes in cursor.fetchall()}


def years_by_source() -> dict[int, list[int]]:
    """Source id -> the years of its staged rows other than its edition."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT s.source_id, array_agg(DISTINCT s.year ORDER BY s.year) FROM {STAGING} s "
            "JOIN stats_source src ON src.id = s.source_id WHERE s.year IS DISTINCT FROM src.edition "
            "GROUP BY s.source_id ORDER BY min(s.seq)"
        )
        return dict(cursor.fetchall())


def flag(seqs: list[int], flag_value: str, note: str) -> None:
    """Flag these staged rows (with a note); the flag and note then count as given by the file."""
    keep = ~(BIT["flag"] | BIT["note"])
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {STAGING} SET flag = %s, note = %s, unset = unset & %s WHERE seq = ANY (%s)",
            [flag_value, note, keep, seqs],
        )
