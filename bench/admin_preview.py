"""The admin's import as an editor runs it: `uv run python -m bench.admin_preview --rows 200000`.

Each size runs in its own process on the benchmark database: a staff user uploads a long-shape CSV
to the observation admin's import page, reads the preview, and confirms it, through Django's test
client (the admin's real views, middleware and templates; no browser). Reported per size: the
upload-to-preview and confirm times, and the process's peak RSS, taken after Django has started and
again at the end, so what grows with the file shows as the difference.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SIZES = (100_000, 200_000)
IMPORT_URL = "/admin/stats/observation/import/"


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _hidden(html: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', html) or re.search(rf'value="([^"]*)"[^>]*name="{name}"', html)
    if not found:
        raise RuntimeError(f"the preview page has no {name!r} field:\n{html[:3000]}")
    return found.group(1)


def _child(path: str) -> None:
    """Runs in a child process: upload, preview and confirm ``path`` in the admin; print the figures as JSON."""
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth.models import User
    from django.test import Client

    # The admin's pages without collectstatic (as the tests render them): static files from the apps.
    plain = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}
    settings.STORAGES = {**settings.STORAGES, "staticfiles": plain}

    user, _ = User.objects.get_or_create(username="bench-admin", defaults={"is_staff": True, "is_superuser": True})
    client = Client(HTTP_HOST="localhost")
    client.force_login(user)
    client.get(IMPORT_URL)  # the page once, so what Django loads lazily is in the baseline
    baseline = _peak_mb()
    started = time.perf_counter()
    with open(path, "rb") as handle:
        response = client.post(IMPORT_URL, {"file": handle, "shape": "long", "reason": "benchmark"})
    html = response.content.decode()
    if response.status_code != 200 or 'id="confirm-form"' not in html:
        errors = re.search(r'id="import-errors".*?</div>', html, re.S)
        raise RuntimeError(f"no preview ({response.status_code}): {errors.group(0) if errors else html[:3000]}")
    preview_seconds = time.perf_counter() - started
    preview_peak = _peak_mb()
    counts = re.search(r"<b>([\d,]+)</b> new", html)
    started = time.perf_counter()
    confirmed = client.post(
        IMPORT_URL, {"confirm": "1", "preview": _hidden(html, "preview"), "checksum": _hidden(html, "checksum")}
    )
    if confirmed.status_code != 302:
        raise RuntimeError(f"the confirm failed ({confirmed.status_code}): {confirmed.content.decode()[:3000]}")
    confirm_seconds = time.perf_counter() - started
    with open(path, encoding="utf-8") as handle:
        rows = sum(1 for _ in handle) - 1
    print(json.dumps({"rows": rows, "new": int(counts.group(1).replace(",", "")) if counts else None,
                      "preview_seconds": preview_seconds, "confirm_seconds": confirm_seconds,
                      "seconds": preview_seconds + confirm_seconds, "baseline_mb": baseline,
                      "preview_peak_mb": preview_peak, "peak_mb": _peak_mb(),
                      "page_kb": len(html) / 1024}))  # fmt: skip


def measure(path: Path) -> dict:
    """One size on a clean warehouse (the previous import's rows removed), in its own process."""
    from bench import imports

    imports._python("prepare", path)
    output = subprocess.run(
        [sys.executable, "-m", "bench.admin_preview", "--child", str(path)],
        capture_output=True, text=True, cwd=ROOT,
        env={**os.environ, "IMPORT_MAX_BYTES": str(max(path.stat().st_size + 1, 20 * 1024 * 1024))},
    )  # fmt: skip
    if output.returncode != 0:
        raise RuntimeError(f"the admin import benchmark failed:\n{output.stderr[-3000:]}")
    result = json.loads(output.stdout.strip().splitlines()[-1])
    imports._python("prepare", path)
    return result


def run(sizes=SIZES, log=print) -> dict:
    """Each size measured (``by_rows``); ``growth`` is the largest size's peak over the smallest's."""
    from bench import imports

    by_rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for rows in sizes:
            path = Path(tmp) / f"admin-{rows}.csv"
            imports.write_long_file(path, rows)
            r = by_rows[rows] = measure(path)
            log(f"admin import, {rows:,} rows ({path.stat().st_size / 2**20:.1f} MB): "
                f"preview {r['preview_seconds']:.1f} s, confirm {r['confirm_seconds']:.1f} s, "
                f"peak {r['peak_mb']:.0f} MB "
                f"(after start {r['baseline_mb']:.0f} MB, at the preview {r['preview_peak_mb']:.0f} MB), "
                f"preview page {r['page_kb']:.0f} KB")  # fmt: skip
    smallest, largest = by_rows[min(sizes)], by_rows[max(sizes)]
    growth = largest["peak_mb"] / smallest["peak_mb"]
    log(f"peak at {max(sizes):,} rows / peak at {min(sizes):,} rows: {growth:.2f}")
    return {"by_rows": by_rows, "smallest": smallest, "largest": largest, "growth": growth}


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        _child(sys.argv[2])
        return
    parser = argparse.ArgumentParser(prog="python -m bench.admin_preview", description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=max(SIZES), help="the largest file (also run: 100,000 rows)")
    args = parser.parse_args()
    from bench import database, warehouse

    database.configure()
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    warehouse.build(10_000, log=print)
    print(f"load average before: {os.getloadavg()}")
    run(tuple(sorted({min(SIZES[0], args.rows), args.rows})))
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
