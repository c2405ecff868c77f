"""Bulk import and export: `uv run python -m bench.bulk --rows 1000000`.

Measures the import service at 100,000 rows and at ``--rows``, `import_facts` end to end, COPY with
every rule and COPY into an unconstrained table (the floor), and the export, then writes the section
"Bulk import and export" of docs/benchmarks.md, leaving the rest of the file as it is
(`python -m bench --import-rows N` runs the same measurements and writes the same section).
"""

from __future__ import annotations

import argparse
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path

HEADING = "## Bulk import and export"
REPORT = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
SMALL = 100_000


def run(rows: int, log=print) -> dict:
    """Every measurement of the section; ``rows`` is the large import (the small one is 100,000 rows)."""
    from bench import admin_preview, imports, write_costs

    results = {"rows": rows, "load": os.getloadavg()}
    imports.byte_compile()
    with tempfile.TemporaryDirectory() as tmp:
        small, large = Path(tmp) / "small.csv", Path(tmp) / "large.csv"
        imports.write_long_file(small, min(SMALL, rows))
        imports.write_long_file(large, rows)
        for name, kind, path in (("service_small", "service", small), ("service", "service", large),
                                 ("command", "command", large), ("copy", "copy", large),
                                 ("indexed", "indexed", large), ("floor", "floor", large)):  # fmt: skip
            if name == "service":  # the warehouse without imported rows, as the bench's queries see it
                imports.measure_nothing(path)
                results["queries_before"] = query_timings()
            results[name] = imports.measure(kind, path)
            log(f"{name}: {_rate(results[name]):,.0f} rows/s, {results[name]['peak_mb']:.0f} MB")
            if name == "service":  # its rows are still there (the next measurement removes them)
                results["queries_after"] = query_timings()
            if name == "floor":  # its table is still there (the export's first import removes it)
                settle()
                results["write_costs"] = costs = write_costs.measure()
                log(f"write costs: at best {write_costs.ceiling(costs, results['floor']['seconds']):.2f} of the floor")
        results["export"] = imports.measure_export(large, Path(tmp) / "facts.csv")
        log(f"export: {_rate(results['export']):,.0f} rows/s, {results['export']['peak_mb']:.0f} MB")
    results["admin"] = admin_preview.run(log=log)
    results["load"] = [round(a, 1) for a in (*results["load"], *os.getloadavg())]
    return results


def query_timings(repeats: int = 30) -> dict:
    """The bench's queries as raw SQL (bench/__main__.py): p50 and the answer's size, to compare after an import.

    Measured once the server has settled (autovacuum done, a checkpoint): what an import leaves is
    the indexes and statistics, not the background writes that follow a million new rows.
    """
    from bench.__main__ import QUERIES, baseline, scenario_params

    settle()
    params = scenario_params()
    return {name: baseline(sql, params, repeats) for name, (_, sql) in QUERIES.items()}


def settle(deadline_seconds: float = 300) -> None:
    """Wait (polling, with a deadline) until no autovacuum works on this database, then checkpoint."""
    import contextlib
    import time

    from django.db import DatabaseError, connection

    deadline = time.monotonic() + deadline_seconds
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'autovacuum worker' "
                "AND datname = current_database()"
            )
            if cursor.fetchone()[0] == 0:
                break
            time.sleep(1)
        # A role without the right to checkpoint (a server of one's own) measures as it is.
        with contextlib.suppress(DatabaseError):
            cursor.execute("CHECKPOINT")


def query_lines(results: dict) -> tuple[list[str], float | None]:
    """The queries' table before and after the large import, and the worst ratio of those whose answer is the same."""
    before, after = results.get("queries_before"), results.get("queries_after")
    if not before or not after:
        return [], None
    lines = [
        "",
        f"The bench's queries (raw SQL, p50 of 30) on the benchmark warehouse before the "
        f"{results['service']['rows']:,}-row service import and right after it (the import analyses the table "
        "after a large merge), each time once autovacuum is done and after a checkpoint:",
        "",
        "| query | before | after | ratio | answer |",
        "| --- | --- | --- | --- | --- |",
    ]
    worst = None
    for name, was in before.items():
        now = after[name]
        ratio = now["p50_ms"] / max(was["p50_ms"], 0.001)
        same = now["bytes"] == was["bytes"]
        if same:
            worst = max(worst or 0, ratio)
        answer = "the same" if same else "includes the imported rows (not compared)"
        lines.append(f"| {name} | {was['p50_ms']:.2f} ms | {now['p50_ms']:.2f} ms | {ratio:.2f}x | {answer} |")
    return lines, worst


def _rate(measured: dict) -> float:
    return measured["rows"] / measured["seconds"]


def section(results: dict) -> list[str]:
    """The section's lines: what was measured, and each target of the bulk issue met or not."""
    from bench import write_costs

    floor = _rate(results["floor"])

    def verdict(ok: bool, why: str = "") -> str:
        return "**met**" if ok else f"**not met**{': ' + why if why else ''}"

    service, small, command = results["service"], results["service_small"], results["command"]
    copy, export, admin = results["copy"], results["export"], results["admin"]
    memory_growth = service["peak_mb"] / small["peak_mb"]
    rows = [
        (f"import service (validated, all-or-nothing), {small['rows']:,} rows", small),
        (f"import service, {service['rows']:,} rows", service),
        (f"`manage.py import_facts` (long CSV, end to end), {command['rows']:,} rows", command),
        ("COPY into stats_observation, every rule (per statement)", copy),
        ("COPY into a table of the same shape with the same indexes, no trigger or check", results["indexed"]),
        ("COPY into an unconstrained table of the same shape (floor)", results["floor"]),
        (f"`manage.py export_facts` (CSV, whole warehouse), {export['rows']:,} rows", export),
        (
            f"admin import (upload, preview, confirm: `bench.admin_preview`), {admin['largest']['rows']:,} rows, "
            f"peak {admin['growth']:.2f}x its peak at {admin['smallest']['rows']:,}",
            admin["largest"],
        ),
    ]
    before, after = results["load"][:3], results["load"][3:]
    lines = [
        HEADING,
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `uv run python -m bench.bulk --rows {results['rows']}` "
        f"on {os.cpu_count()} cores shared with other work (load average {before[0]} before, {after[0]} after): "
        "each measurement in its own process on the benchmark database, its peak memory the process's max RSS "
        "(the environment byte-compiled first, as Python's own caching leaves it after a first run). "
        "The imported rows are removed between measurements.",
        "",
        "| method | rows | seconds | rows/s | of the floor | peak memory |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, measured in rows:
        lines.append(
            f"| {name} | {measured['rows']:,} | {measured['seconds']:.2f} | {_rate(measured):,.0f} | "
            f"{_rate(measured) / floor:.2f} | {measured['peak_mb']:.0f} MB |"
        )
    lines += [
        "",
        "Targets:",
        "",
        f"- service at {service['rows']:,} rows: {_rate(service):,.0f} rows/s (≥ 50,000), {_rate(service) / floor:.2f} "
        f"of the floor (≥ 0.4): {verdict(_rate(service) >= 50_000 and _rate(service) / floor >= 0.4)}",
        f"- import_facts: {_rate(command):,.0f} rows/s (≥ 50,000), peak {command['peak_mb']:.0f} MB (≤ 300): "
        f"{verdict(_rate(command) >= 50_000 and command['peak_mb'] <= 300)}",
        f"- COPY with every rule: {_rate(copy) / floor:.2f} of the floor (≥ 0.6): "
        f"{verdict(_rate(copy) / floor >= 0.6)} (the rules themselves: {_rate(copy) / _rate(results['indexed']):.2f} "
        "of the same COPY into the table's indexes without them)",
        f"- service peak memory: {service['peak_mb']:.0f} MB at {service['rows']:,} rows (≤ 300), "
        f"{memory_growth:.2f}x its peak at {small['rows']:,} (≤ 1.2): "
        f"{verdict(service['peak_mb'] <= 300 and memory_growth <= 1.2)}",
        f"- export: {_rate(export):,.0f} rows/s (≥ 200,000), peak {export['peak_mb']:.0f} MB (≤ 200): "
        f"{verdict(_rate(export) >= 200_000 and export['peak_mb'] <= 200)}",
    ]
    costs = write_costs.lines(results["write_costs"], results["floor"]["seconds"])
    queries, worst = query_lines(results)
    if worst is not None:
        lines.append(
            f"- queries after the {service['rows']:,}-row import: the slowest of those whose answer did not change "
            f"took {worst:.2f}x its time before (≤ 1.1): {verdict(worst <= 1.1)}"
        )
    return lines + queries + costs


def write_section(lines: list[str], path: Path = REPORT) -> None:
    """Replace the section (up to the next second-level heading) or append it; the rest stays as it is."""
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    body = "\n".join(lines) + "\n"
    start = text.find(HEADING + "\n")
    if start < 0:
        path.write_text(text.rstrip("\n") + "\n\n" + body)
        return
    end = text.find("\n## ", start + len(HEADING))
    path.write_text(text[:start] + body + (text[end:] if end >= 0 else ""))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bulk", description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the large import (default 1,000,000)")
    parser.add_argument("--output", type=Path, default=REPORT)
    args = parser.parse_args()
    from bench import database, warehouse

    database.configure()
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    warehouse.build(10_000, log=print)
    write_section(section(run(args.rows)), args.output)
    print(f"wrote the section {HEADING[3:]!r} of {args.output}")


if __name__ == "__main__":
    main()
