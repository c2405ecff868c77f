"""Load: 50 concurrent readers and an editor for 60 s against the real server, nothing lost.

Runs `python -m bench.load` (locust, headless, on loopback; its own database with the published
data): zero failed requests, and every correction the editor made is what GraphQL answers
afterwards. The figures it measures are in docs/benchmarks.md.
"""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_fifty_clients_for_a_minute_with_corrections_lose_nothing():
    result = subprocess.run(
        [sys.executable, "-m", "bench.load", "--users", "50", "--seconds", "60"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.stdout.strip(), result.stderr[-3000:]
    report = json.loads(result.stdout[result.stdout.index("{") :])
    mixed = report["mixed"]
    assert mixed["failure_messages"] == []
    assert mixed["failures"] == 0
    assert mixed["requests"] > 1000
    assert report["corrections"] >= 30  # one a second for a minute, give or take the ramp-up
    assert report["invisible_corrections"] == []
    assert result.returncode == 0
