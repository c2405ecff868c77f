"""Lighthouse on the explorer's home and an indicator page, against Debian's chromium.

    cd frontend && npm ci && cd .. && uv run python -m bench.lighthouse [--preset desktop|mobile]

Starts the real server (`manage.py serve`: uvicorn, collected and compressed static files) on
the local database with the published data, runs the pinned Lighthouse (frontend/package.json)
on each page (the median run by performance) and prints the four category scores with the
targets (performance ≥ 90, accessibility ≥ 95, best practices ≥ 95, SEO ≥ 90) and the metrics
behind the performance score. Results are recorded in docs/benchmarks.md.
Needs Node (the site does not).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.server import ROOT, running

PAGES = {"home": "/", "indicator": "/indicators/missing.cases/?year=2024"}
TARGETS = {"performance": 90, "accessibility": 95, "best-practices": 95, "seo": 90}
LIGHTHOUSE = ROOT / "frontend" / "node_modules" / "lighthouse" / "cli" / "index.js"
CHROMIUM = "/usr/bin/chromium"
ATTEMPTS = 3
METRICS = ("first-contentful-paint", "largest-contentful-paint", "total-blocking-time", "cumulative-layout-shift")


def scores(url: str, preset: str) -> dict[str, int]:
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        command = [
            "node", str(LIGHTHOUSE), url, "--quiet", "--output=json", f"--output-path={report}",
            f"--only-categories={','.join(TARGETS)}", f"--chrome-path={CHROMIUM}",
            "--chrome-flags=--headless=new --no-sandbox --disable-gpu",
        ]  # fmt: skip
        if preset == "desktop":
            command.append("--preset=desktop")
        for _attempt in range(ATTEMPTS):  # a loaded machine sometimes loses the trace (NO_NAVSTART): run again
            done = subprocess.run(command, env={"CHROME_PATH": CHROMIUM, "PATH": "/usr/bin:/bin"})
            if done.returncode == 0:
                break
        else:
            raise RuntimeError(f"Lighthouse failed {ATTEMPTS} times on {url}")
        result = json.loads(report.read_text())
    found = {name: round(result["categories"][name]["score"] * 100) for name in TARGETS}
    for metric in METRICS:
        found[metric] = result["audits"][metric]["displayValue"]
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=["mobile", "desktop"], default="mobile")
    parser.add_argument("--runs", type=int, default=3, help="runs per page; the median is reported (default 3)")
    args = parser.parse_args()
    if not LIGHTHOUSE.exists():
        sys.exit("Lighthouse is not installed: cd frontend && npm ci")
    from ncmec import localdb

    met = True
    with running(localdb.ensure_running().url, start_s=600, SECRET_KEY="lighthouse-bench", HTTPS="0") as port:
        print(f"| page | {' | '.join([*TARGETS, *METRICS])} |\n| --- |{' --- |' * (len(TARGETS) + len(METRICS))}")
        for page, path in PAGES.items():
            runs = sorted((scores(f"http://127.0.0.1:{port}{path}", args.preset) for _ in range(args.runs)),
                          key=lambda run: run["performance"])  # fmt: skip
            found = runs[len(runs) // 2]
            met &= all(found[name] >= target for name, target in TARGETS.items())
            cells = " | ".join([*(f"{found[name]} (≥ {target})" for name, target in TARGETS.items()),
                                *(found[m] for m in METRICS)])  # fmt: skip
            print(f"| {page} `{path}` | {cells} |", flush=True)
    print("all targets met" if met else "NOT all targets met")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
