"""What one figure's write costs PostgreSQL, part by part, and how close to the floor any design can get.

The rows of the floor measurement (bench.imports, table ``bench_copy_floor``) are inserted again,
by ``INSERT ... SELECT`` in the database, into an unconstrained table of the observations' shape
with no index, then with each index of ``stats_observation`` alone, and into a table of the history
records' shape with the history table's indexes. Each part's cost is its time beyond the
unconstrained insert (the history record's is its whole time: it is a row of its own). Every
insert is rolled back.

What the issue requires of every design (the row itself, its primary key, the two unique indexes
that are integrity rules, and one history record per figure) bounds the share of the floor any
writer can reach: the floor's own time over the floor's time plus those parts'.
"""

from __future__ import annotations

import re
import time

from bench.imports import FLOOR_TABLE

TARGET = "bench_write_cost"
# Kept by any design: the primary key and the fact's two unique indexes (integrity rules).
REQUIRED_INDEXES = (
    "stats_observation_pkey",
    "observation_fact_unique_per_source",
    "observation_one_preferred_per_fact",
)


def _indexes(cursor, table: str) -> list[tuple[str, str]]:
    cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s ORDER BY indexname", [table])
    return cursor.fetchall()


def _on(definition: str, table: str) -> str:
    """An index definition of another table, made for ``table`` under a name of its own."""
    definition = re.sub(r" ON (public\.)?\w+ ", f" ON {table} ", definition)
    return re.sub(r"INDEX \w+ ON", "INDEX ON", definition)


def _timed(cursor, setup: list[str], statement: str) -> float:
    """Seconds of ``statement`` after ``setup``, in a transaction rolled back afterwards."""
    cursor.execute("BEGIN")
    try:
        for sql in setup:
            cursor.execute(sql)
        started = time.perf_counter()
        cursor.execute(statement)
        return time.perf_counter() - started
    finally:
        cursor.execute("ROLLBACK")


def measure() -> dict:
    """Seconds of the unconstrained insert, each index's and the history record's extra seconds, and the rows."""
    from django.db import connection

    from stats.models import ObservationEvent

    # The figure's tracked columns, as the history trigger copies them (pghistory's own columns aside).
    tracked = [f.column for f in ObservationEvent._meta.concrete_fields if not f.column.startswith("pgh_")]
    shape = f"CREATE TABLE {TARGET} (LIKE stats_observation INCLUDING DEFAULTS INCLUDING IDENTITY)"
    rows_in = f"INSERT INTO {TARGET} OVERRIDING SYSTEM VALUE SELECT * FROM {FLOOR_TABLE}"
    history = (
        f"INSERT INTO {TARGET} (pgh_created_at, pgh_label, pgh_obj_id, pgh_context_id, {', '.join(tracked)}) "
        f"SELECT now(), 'insert', id, (SELECT gen_random_uuid()), {', '.join(tracked)} FROM {FLOOR_TABLE}"
    )
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {FLOOR_TABLE}")
        rows = cursor.fetchone()[0]
        bare = _timed(cursor, [shape], rows_in)
        indexes = {
            name: max(_timed(cursor, [shape, _on(definition, TARGET)], rows_in) - bare, 0.0)
            for name, definition in _indexes(cursor, "stats_observation")
        }
        event_shape = [f"CREATE TABLE {TARGET} (LIKE stats_observationevent INCLUDING DEFAULTS INCLUDING IDENTITY)"]
        event_shape += [_on(definition, TARGET) for _, definition in _indexes(cursor, "stats_observationevent")]
        history_seconds = _timed(cursor, event_shape, history)
    return {"rows": rows, "bare": bare, "indexes": indexes, "history": history_seconds}


def ceiling(costs: dict, floor_seconds: float) -> float:
    """The best share of the floor a writer keeping the required parts can reach (0..1)."""
    required = costs["history"] + sum(costs["indexes"].get(name, 0.0) for name in REQUIRED_INDEXES)
    return floor_seconds / (floor_seconds + required)


def lines(costs: dict, floor_seconds: float) -> list[str]:
    """The section's table of the parts, and the ceiling they set."""
    per_row = 1e6 / costs["rows"]
    share = ceiling(costs, floor_seconds)
    out = [
        "",
        f"What one figure's write costs, part by part (`bench/write_costs.py`: the floor's {costs['rows']:,} rows "
        "inserted again in the database into a table of the observations' shape, without index, then with each "
        "index alone; and into a table of the history records' shape with its indexes; each rolled back):",
        "",
        "| part | seconds | µs per row | kept by any design |",
        "| --- | --- | --- | --- |",
        f"| the row (INSERT ... SELECT, no index) | {costs['bare']:.2f} | {costs['bare'] * per_row:.1f} | yes |",
    ]
    for name, seconds in sorted(costs["indexes"].items(), key=lambda item: -item[1]):
        required = "yes (integrity)" if name in REQUIRED_INDEXES else "no (reads)"
        out.append(f"| index `{name}` | {seconds:.2f} | {seconds * per_row:.1f} | {required} |")
    out += [
        f"| one history record per figure (its table and indexes) | {costs['history']:.2f} | "
        f"{costs['history'] * per_row:.1f} | yes (the issue's history rule) |",
        "",
        f"The floor COPY took {floor_seconds:.2f} s. A writer that keeps only what every design keeps (the row, its "
        f"primary key, the two unique indexes and the history record) and checks nothing else takes at least the "
        f"floor's time plus those parts: at best {share:.2f} of the floor, whatever the import's own code does.",
    ]
    return out
