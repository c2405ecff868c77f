"""Import throughput: a long-format file through the real import service vs PostgreSQL COPY.

Each measurement runs in a child process so its peak memory (max RSS) is its own.
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

HEADER = ["indicator", "source", "year", "bench_state", "bench_status", "value", "quote"]


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


def _child(kind: str, path: str) -> None:
    """Runs in a child process: import ``path`` one way, print timings and peak memory as JSON."""
    import django

    django.setup()
    from django.db import connection

    from stats.models import Observation
    from stats.services.catalog import indicator_upsert
    from stats.services.observations import ObservationRow, observations_import

    with open(path, newline="", encoding="utf-8") as handle:
        indicators = {r["indicator"] for r in csv.DictReader(handle)}
    for code in sorted(indicators):
        indicator_upsert(code=code, name=code, unit="count", topic="bench")
    Observation.objects.filter(indicator__code__in=indicators).delete()
    started = time.perf_counter()
    if kind == "service":
        with open(path, newline="", encoding="utf-8") as handle:
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
            result = observations_import(rows=rows, reason="benchmark", channel="bench", file_name=path)
        count = result.new
    else:
        # COPY the same rows, already resolved to ids (what PostgreSQL alone can do).
        with connection.cursor() as cursor:
            cursor.execute("SELECT code, id FROM stats_indicator WHERE code LIKE 'bench.import%%'")
            ind = dict(cursor.fetchall())
            cursor.execute("SELECT slug, id FROM stats_source WHERE slug LIKE 'bench-%%'")
            src = dict(cursor.fetchall())
            cursor.execute("SELECT d.code, m.code, m.id FROM stats_member m JOIN stats_dimension d "
                           "ON d.id = m.dimension_id WHERE d.code LIKE 'bench_%%'")  # fmt: skip
            mem = {(d, c): i for d, c, i in cursor.fetchall()}
            started = time.perf_counter()
            count = 0
            with (
                open(path, newline="", encoding="utf-8") as handle,
                cursor.cursor.copy(
                    "COPY stats_observation (indicator_id, source_id, year, member_ids, value, value_text, quote, "
                    "created_at, updated_at) FROM STDIN"
                ) as copy,
            ):
                for r in csv.DictReader(handle):
                    members = sorted([mem[("bench_state", r["bench_state"])], mem[("bench_status", r["bench_status"])]])
                    copy.write_row((ind[r["indicator"]], src[r["source"]], int(r["year"]), members,
                                    r["value"].replace(",", ""), r["value"], r["quote"], "now", "now"))  # fmt: skip
                    count += 1
    elapsed = time.perf_counter() - started
    # Peak memory of the import itself, read before the clean-up (an ORM delete that loads every row).
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    Observation.objects.filter(indicator__code__in=indicators).delete()
    print(json.dumps({"rows": count, "seconds": elapsed, "peak_mb": peak_mb}))


def measure(kind: str, path: Path) -> dict:
    output = subprocess.run(
        [sys.executable, "-m", "bench.imports", kind, str(path)],
        capture_output=True, text=True, env=os.environ.copy(), cwd=Path(__file__).resolve().parent.parent,
    )  # fmt: skip
    if output.returncode != 0:
        raise RuntimeError(f"the {kind} import benchmark failed:\n{output.stderr[-3000:]}")
    return json.loads(output.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    _child(sys.argv[1], sys.argv[2])
