"""Bulk import and export throughput and memory, each measured in its own process.

- service: a long-shape CSV through the import service (rows streamed from the file);
- command: `manage.py import_facts FILE` end to end, as a user runs it (reading, validation, write, bar);
- copy: COPY of the same rows, ids resolved, into the observations table with every rule enforced
  (the writer supplies the breakdown's derived columns, so the rules run per statement);
- floor: the same COPY into an unconstrained table of the same shape (no index, trigger or constraint);
- indexed: the same COPY into a table of the same shape with the observations' indexes (unique ones
  included) and no trigger or check: what the rules cost beyond storing and indexing the rows;
- export: `manage.py export_facts --output FILE` of the whole warehouse, imported rows included.

Peak memory is the process's max RSS (``getrusage`` in the child, ``wait4`` for the commands).
"""

from __future__ import annotations

import csv
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from bench.warehouse import STATES, STATUSES

ROOT = Path(__file__).resolve().parent.parent
HEADER = ["indicator", "source", "year", "bench_state", "bench_status", "value", "quote"]
FLOOR_TABLE = "bench_copy_floor"
INDEXED_TABLE = "bench_copy_indexed"
COPY_TABLES = {
    "copy": "stats_observation",
    "floor": FLOOR_TABLE,
    "indexed": INDEXED_TABLE,
}


def write_long_file(path: Path, rows: int) -> None:
    """``rows`` observations in the long shape: one per row, natural keys only."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        written = 0
        indicator = 0
        while written < rows:
            for year in range(1990, 2025):
                for state in STATES:
                    for status in STATUSES:
                        if written >= rows:
                            return
                        writer.writerow([f"bench.import{indicator:04d}", f"bench-{year}", year, state, status,
                                         f"{(written * 7919) % 100000:,}", "imported row"])  # fmt: skip
                        written += 1
            indicator += 1


def _indicator_codes(path: Path) -> list[str]:
    with path.open(newline="", encoding="utf-8") as handle:
        return sorted({r["indicator"] for r in csv.DictReader(handle)})


def _clean(cursor) -> None:
    """Remove the imported rows (and their history) in a few set-based statements."""
    ids = "SELECT id FROM stats_observation WHERE indicator_id IN " \
          "(SELECT id FROM stats_indicator WHERE code LIKE 'bench.import%%')"  # fmt: skip
    cursor.execute(f"DELETE FROM stats_restatement WHERE observation_id IN ({ids})")
    cursor.execute(f"CREATE TEMP TABLE bench_gone AS {ids}")
    cursor.execute("DELETE FROM stats_observation WHERE id IN (SELECT id FROM bench_gone)")
    cursor.execute("DELETE FROM stats_observationevent WHERE pgh_obj_id IN (SELECT id FROM bench_gone)")
    cursor.execute("DROP TABLE bench_gone")
    cursor.execute(f"DROP TABLE IF EXISTS {FLOOR_TABLE}, {INDEXED_TABLE}")
    cursor.execute("VACUUM ANALYZE stats_observation")


def _child(kind: str, path: str) -> None:
    """Runs in a child process: import ``path`` one way, print rows, seconds and peak memory as JSON."""
    import django

    django.setup()
    from django.db import connection

    from stats.services.catalog import indicator_upsert
    from stats.services.observations import ObservationRow, observations_import

    path = Path(path)
    if kind == "prepare":
        for code in _indicator_codes(path):
            indicator_upsert(code=code, name=code, unit="count", topic="bench")
        with connection.cursor() as cursor:
            _clean(cursor)
        print(json.dumps({}))
        return
    started = time.perf_counter()
    if kind == "service":
        with path.open(newline="", encoding="utf-8") as handle:
            rows = (  # streamed: the service reads any iterable once
                ObservationRow(
                    indicator=r["indicator"],
                    source=r["source"],
                    year=int(r["year"]),
                    members={"bench_state": r["bench_state"], "bench_status": r["bench_status"]},
                    value_text=r["value"],
                    quote=r["quote"],
                    row=n,
                )
                for n, r in enumerate(csv.DictReader(handle), start=2)
            )
            count = observations_import(rows=rows, reason="benchmark", channel="bench", file_name=path.name).new
    else:
        count, started = _copy(connection, path, COPY_TABLES[kind])
    elapsed = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"rows": count, "seconds": elapsed, "peak_mb": peak_mb}))


def _copy(connection, path: Path, table: str) -> tuple[int, float]:
    """COPY the file's rows, ids resolved (what PostgreSQL alone can do), into ``table``, in one transaction."""
    from django.db import transaction

    columns = ("indicator_id, source_id, year, member_ids, dimension_ids, member_order, is_preferred, value, "
               "value_text, quote, created_at, updated_at")  # fmt: skip
    with transaction.atomic(), connection.cursor() as cursor:
        # Each row is its fact's only figure: it enters preferred (migration 0015; the database still checks).
        cursor.execute("SET LOCAL stats.preferred_given = on")
        if table != "stats_observation":
            like = "stats_observation INCLUDING DEFAULTS INCLUDING IDENTITY"
            like += " INCLUDING INDEXES" if table == INDEXED_TABLE else ""
            cursor.execute(f"DROP TABLE IF EXISTS {table}")
            cursor.execute(f"CREATE TABLE {table} (LIKE {like})")
        cursor.execute("SELECT code, id FROM stats_indicator WHERE code LIKE 'bench.import%%'")
        ind = dict(cursor.fetchall())
        cursor.execute("SELECT slug, id FROM stats_source WHERE slug LIKE 'bench-%%'")
        src = dict(cursor.fetchall())
        cursor.execute("SELECT d.code, m.code, m.id FROM stats_member m JOIN stats_dimension d "
                       "ON d.id = m.dimension_id WHERE d.code LIKE 'bench_%%'")  # fmt: skip
        mem = {(d, c): i for d, c, i in cursor.fetchall()}
        # The breakdown's derived columns, as the database computes them, once per breakdown.
        breakdowns = {}
        for state in STATES:
            for status in STATUSES:
                ids = sorted([mem[("bench_state", state)], mem[("bench_status", status)]])
                cursor.execute("SELECT dimension_ids, member_order FROM stats_breakdown(%s::bigint[])", [ids])
                dims, order = cursor.fetchone()
                breakdowns[(state, status)] = (_array(ids), _array(dims), order)
        started = time.perf_counter()
        count = 0
        with (
            path.open(newline="", encoding="utf-8") as handle,
            cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy,
        ):
            reader = csv.reader(handle)
            next(reader)
            for indicator, source, year, state, status, value, quote in reader:
                member_ids, dims, order = breakdowns[(state, status)]
                copy.write_row((ind[indicator], src[source], year, member_ids, dims, order, "t",
                                value.replace(",", ""), value, quote, "now", "now"))  # fmt: skip
                count += 1
    return count, started


def _array(ids) -> str:
    return "{" + ",".join(map(str, ids)) + "}"


def _python(kind: str, path: Path) -> dict:
    output = subprocess.run(
        [sys.executable, "-m", "bench.imports", kind, str(path)],
        capture_output=True, text=True, env=os.environ.copy(), cwd=ROOT,
    )  # fmt: skip
    if output.returncode != 0:
        raise RuntimeError(f"the {kind} benchmark failed:\n{output.stderr[-3000:]}")
    return json.loads(output.stdout.strip().splitlines()[-1])


def _command(args: list[str], **env) -> tuple[float, float]:
    """Run a manage.py command; its wall time and peak RSS (MB)."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "manage.py", *args], cwd=ROOT, env={**os.environ, **env},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    stderr = process.stderr.read()
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{stderr[-3000:].decode(errors='replace')}")
    return elapsed, usage.ru_maxrss / 1024


def byte_compile() -> None:
    """Byte-compile the environment and the project, as Python's own caching leaves them after a first run.

    Where PYTHONDONTWRITEBYTECODE is set (this machine), every process would otherwise compile Django,
    strawberry and the rest anew, about 2.4 s of each command's start that no user's second run pays.
    (uv's compile-bytecode setting would do it at install, but recompiles on every `uv run`: astral-sh/uv#12202.)
    """
    import sysconfig

    paths = [sysconfig.get_paths()["purelib"], *(str(ROOT / name) for name in ("ncmec", "stats", "bench"))]
    # Some packages ship files that do not compile (templates, other Pythons' tests): the rest is what counts.
    subprocess.run([sys.executable, "-m", "compileall", "-q", "-j", "0", *paths], capture_output=True)


def measure_nothing(path: Path) -> None:
    """Remove the imported rows of the previous measurement (the warehouse as the bench builds it)."""
    _python("prepare", path)


def measure(kind: str, path: Path) -> dict:
    """One measurement on a clean warehouse (the imported rows of the previous one removed)."""
    _python("prepare", path)
    if kind != "command":
        return _python(kind, path)
    rows = sum(1 for _ in path.open(encoding="utf-8")) - 1
    seconds, peak_mb = _command(
        ["import_facts", str(path), "--reason", "benchmark"], IMPORT_MAX_BYTES=str(path.stat().st_size + 1)
    )
    return {"rows": rows, "seconds": seconds, "peak_mb": peak_mb}


def measure_export(path: Path, output: Path) -> dict:
    """Import ``path`` through the service, then export the whole warehouse with export_facts."""
    measure("service", path)
    seconds, peak_mb = _command(["export_facts", "--output", str(output)])
    with output.open(encoding="utf-8") as handle:
        rows = sum(1 for _ in csv.reader(handle)) - 1
    output.unlink()
    _python("prepare", path)
    return {"rows": rows, "seconds": seconds, "peak_mb": peak_mb}


if __name__ == "__main__":
    _child(sys.argv[1], sys.argv[2])
