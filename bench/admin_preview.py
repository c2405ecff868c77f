"""The admin's import as an editor runs it: `uv run python -m bench.admin_preview --rows 200000`.

Each size runs against its own real server (`manage.py serve --workers 1`, one process) on the
benchmark database: a staff user logs in over HTTP, uploads a long-shape CSV to the observation
admin's import page, reads the preview, and confirms it. Reported per size: the upload-to-preview
and confirm times, and the server process's peak RSS (VmHWM) once it has served the import page,
after the preview and at the end, so what grows with the file shows as the difference.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SIZES = (100_000, 200_000)
IMPORT_URL = "/admin/stats/observation/import/"
USER = "bench-admin"


def _hidden(html: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', html) or re.search(rf'value="([^"]*)"[^>]*name="{name}"', html)
    if not found:
        raise RuntimeError(f"the page has no {name!r} field:\n{html[:3000]}")
    return found.group(1)


def _peak_mb(pid: int) -> float:
    """The process's peak resident memory (VmHWM), in MB."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"^VmHWM:\s+(\d+) kB", status, re.M).group(1)) / 1024


def _logged_in(base: str, password: str):
    import requests

    session = requests.Session()
    page = session.get(f"{base}/admin/login/", timeout=60)
    login = session.post(
        f"{base}/admin/login/?next={IMPORT_URL}",
        data={"username": USER, "password": password, "next": IMPORT_URL,
              "csrfmiddlewaretoken": _hidden(page.text, "csrfmiddlewaretoken")},
        timeout=60,
    )  # fmt: skip
    if login.status_code != 200 or "Import observations" not in login.text:
        raise RuntimeError(f"the bench user could not log in ({login.status_code}): {login.text[:2000]}")
    return session, login.text


def _import(base: str, pid: int, path: Path, password: str) -> dict:
    """Upload, preview and confirm ``path`` through the server at ``base``; the figures as a dict."""
    session, page = _logged_in(base, password)
    baseline = _peak_mb(pid)
    started = time.perf_counter()
    with path.open("rb") as handle:
        response = session.post(
            f"{base}{IMPORT_URL}",
            data={"shape": "long", "reason": "benchmark", "csrfmiddlewaretoken": _hidden(page, "csrfmiddlewaretoken")},
            files={"file": (path.name, handle, "text/csv")},
            timeout=600,
        )  # fmt: skip
    html = response.text
    if response.status_code != 200 or 'id="confirm-form"' not in html:
        errors = re.search(r'id="import-errors".*?</div>', html, re.S)
        raise RuntimeError(f"no preview ({response.status_code}): {errors.group(0) if errors else html[:3000]}")
    preview_seconds = time.perf_counter() - started
    preview_peak = _peak_mb(pid)
    counts = re.search(r"<b>([\d,]+)</b> new", html)
    started = time.perf_counter()
    confirmed = session.post(
        f"{base}{IMPORT_URL}",
        data={"confirm": "1", "preview": _hidden(html, "preview"), "checksum": _hidden(html, "checksum"),
              "csrfmiddlewaretoken": _hidden(html, "csrfmiddlewaretoken")},
        allow_redirects=False, timeout=600,
    )  # fmt: skip
    if confirmed.status_code != 302:
        raise RuntimeError(f"the confirm failed ({confirmed.status_code}): {confirmed.text[:3000]}")
    confirm_seconds = time.perf_counter() - started
    with path.open(encoding="utf-8") as handle:
        rows = sum(1 for _ in handle) - 1
    return {"rows": rows, "new": int(counts.group(1).replace(",", "")) if counts else None,
            "preview_seconds": preview_seconds, "confirm_seconds": confirm_seconds,
            "seconds": preview_seconds + confirm_seconds, "baseline_mb": baseline,
            "preview_peak_mb": preview_peak, "peak_mb": _peak_mb(pid), "page_kb": len(html) / 1024}  # fmt: skip


def measure(path: Path) -> dict:
    """One size on a clean warehouse (the previous import's rows removed), against a server of its own."""
    from django.contrib.auth.models import User

    from bench import imports, server

    imports._python("prepare", path)
    password = secrets.token_urlsafe(16)
    user, _ = User.objects.get_or_create(username=USER, defaults={"is_staff": True, "is_superuser": True})
    user.set_password(password)
    user.save()
    limit = str(max(path.stat().st_size + 1, 20 * 1024 * 1024))
    database_url = os.environ["DATABASE_URL"]
    with server.running(database_url, workers=1, args=("--no-migrate",), IMPORT_MAX_BYTES=limit) as port:
        result = _import(f"http://localhost:{port}", server.serving_pid(port), path, password)
    imports._python("prepare", path)
    return result


def run(sizes=SIZES, log=print) -> dict:
    """Each size measured (``by_rows``); ``growth`` is the largest size's peak over the smallest's."""
    from django.core.management import call_command

    from bench import imports

    call_command("collectstatic", interactive=False, verbosity=0)  # the servers run with --no-migrate
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
