"""`uv run python -m bench.load [--users 50] [--seconds 60] [--cached-seconds 20]`: the service under load.

Loads the published data into its own database (ncmec_load, made anew), starts the server `serve`
runs, and drives it with locust (headless, a separate process) on loopback: USERS readers sending
a mix of dashboard queries with no pause, and one data editor logged in to the admin who corrects
a figure through GraphQL every second. Afterwards every correction must be visible through
GraphQL. With --cached-seconds, a second run sends only one dashboard query (served from the
response cache) to measure requests/s.

Prints the results as JSON; exits 1 on any failed request or any correction not visible.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

from bench import database, server

ROOT = Path(__file__).resolve().parent.parent
EDITOR, PASSWORD = "load-editor", "load-test-password-not-secret-1"
INDICATOR = "missing.cases"
DASHBOARD = [
    '{ table(indicator: "missing.cases", year: 2021, rows: "case_type", columns: "case_status") '
    "{ title rows { member { label } cells { valueText } total { valueText } } } }",
    '{ series(indicator: "cybertipline.reports") { year valueText percentChange source { slug } } }',
    '{ aggregate(indicator: "missing.cases", over: "state", groupBy: ["case_status"], years: [2024]) '
    "{ year members { label } sum total { displayValue } matchesPrintedTotal } }",
    '{ observations(filter: {indicators: ["missing.cases"], year: 2021}, limit: 100) '
    "{ totalCount items { id valueText correctedValue members { label } } } }",
    "{ coverage(year: 2023) { indicator { code } printedBreakdowns { key } observations } }",
]
SEEN = '{ observations(filter: {indicators: ["%s"], allSources: true}, limit: 10000) { items { id correctedValue } } }'


def locust(
    port: int,
    users: int,
    seconds: int,
    queries: list[str],
    workdir: Path,
    corrects: list[int],
    extra: dict | None = None,
) -> dict:
    """One headless locust run (with an editor correcting ``corrects`` if any; ``extra``: more of the locustfile's
    settings); its aggregated figures."""
    queries_file = workdir / "queries.json"
    queries_file.write_text(json.dumps(queries))
    env = {**os.environ, "LOAD_QUERIES": str(queries_file), "LOAD_CORRECTIONS": str(workdir / "corrections.txt")}
    env.update(extra or {})
    editor = bool(corrects)
    if editor:
        env.update(LOAD_EDITOR=EDITOR, LOAD_PASSWORD=PASSWORD, LOAD_OBSERVATIONS=",".join(map(str, corrects)))
    prefix = workdir / f"stats-{seconds}-{len(list(workdir.glob('stats-*_stats.csv')))}"
    subprocess.run(
        [sys.executable, "-m", "locust", "-f", str(ROOT / "bench" / "locustfile.py"), "--headless",
         "--users", str(users + editor), "--spawn-rate", str(users + editor), "--run-time", f"{seconds}s",
         "--host", f"http://127.0.0.1:{port}", "--csv", str(prefix), "--only-summary", "--loglevel", "WARNING",
         "--stop-timeout", "10"],
        cwd=ROOT, env=env, check=False, capture_output=True, text=True,
    )  # fmt: skip
    with open(f"{prefix}_stats.csv") as handle:
        total = next(row for row in csv.DictReader(handle) if row["Name"] == "Aggregated")
    with open(f"{prefix}_failures.csv") as handle:
        failures = [f"{row['Name']}: {row['Error']} ({row['Occurrences']}x)" for row in csv.DictReader(handle)]
    return {
        "users": users,
        "seconds": seconds,
        "requests": int(total["Request Count"]),
        "failures": int(total["Failure Count"]),
        "failure_messages": failures[:10],
        "requests_per_s": round(float(total["Requests/s"]), 1),
        "p50_ms": float(total["50%"]),
        "p95_ms": float(total["95%"]),
        "p99_ms": float(total["99%"]),
    }


def invisible_corrections(port: int, workdir: Path) -> tuple[int, list[str]]:
    """Each observation's last applied correction against what GraphQL now answers."""
    log = workdir / "corrections.txt"
    applied = log.read_text().splitlines() if log.exists() else []
    last = dict(line.split()[:2] for line in applied)
    body = json.dumps({"query": SEEN % INDICATOR}).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", body, {"Content-Type": "application/json"})
    answered = {
        i["id"]: i["correctedValue"]
        for i in json.load(urllib.request.urlopen(request))["data"]["observations"]["items"]
    }
    return len(applied), [
        f"observation {i}: corrected to {v}, GraphQL shows {answered.get(i)}"
        for i, v in last.items()
        if answered.get(i) != v
    ]


def prepare() -> tuple[str, list[int]]:
    """A database with the published data and an editor: its URL and the observations to correct."""
    url = database.configure("ncmec_load", fresh=True)
    import django

    django.setup()
    from django.contrib.auth.models import Group, User
    from django.core.management import call_command

    from stats.models import Observation

    call_command("migrate", verbosity=0)
    call_command("load_reports", verbosity=0)
    User.objects.create_user(EDITOR, password=PASSWORD, is_staff=True).groups.add(Group.objects.get(name="Data editor"))
    ids = Observation.objects.filter(indicator__code=INDICATOR).order_by("id").values_list("id", flat=True)[:20]
    return url, list(ids)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=50, help="concurrent readers (plus one editor)")
    parser.add_argument("--seconds", type=int, default=60, help="length of the mixed run")
    parser.add_argument("--cached-seconds", type=int, default=0, help="length of the cached-query run (0: none)")
    parser.add_argument("--workers", type=int, default=2, help="server worker processes")
    args = parser.parse_args()

    url, corrects = prepare()
    with tempfile.TemporaryDirectory() as tmp, server.running(url, workers=args.workers) as port:
        workdir = Path(tmp)
        result = {"mixed": locust(port, args.users, args.seconds, DASHBOARD, workdir, corrects)}
        result["corrections"], result["invisible_corrections"] = invisible_corrections(port, workdir)
        if args.cached_seconds:
            result["cached"] = locust(port, args.users, args.cached_seconds, DASHBOARD[:1], workdir, corrects=[])
    print(json.dumps(result, indent=2))
    runs = [result["mixed"], *([result["cached"]] if "cached" in result else [])]
    ok = all(r["failures"] == 0 and r["requests"] > 0 for r in runs)
    sys.exit(0 if ok and result["corrections"] > 0 and not result["invisible_corrections"] else 1)


if __name__ == "__main__":
    main()
