"""A new staff user's first import, correction and revert, clicked through a real Chromium.

Drives Debian's chromium (apt-get install chromium) with Playwright; no browser download. Skips
only where no chromium is installed and CI is unset; in CI it must run. Screenshots of the
preview and the history page go to test-artifacts/.
"""

import io
import json
import os
import shutil
import urllib.request
from importlib import import_module
from pathlib import Path

import pytest
from django.apps import apps as django_apps
from django.contrib.auth.models import Group, User
from django.core.management import call_command

from stats.models import Observation, Source

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parent.parent.parent / "test-artifacts"
NEVADA_ACTIVE_2025 = """{
  observations(filter: {year: 2025, members: [
    {dimension: "state", member: "NV"}, {dimension: "case_status", member: "active"}
  ]}) {
    items { valueText correctedValue }
  }
}"""
STATES_2025 = "MISSING STATE,ACTIVE,RESOLVED,GRAND TOTAL\nAK,3,30,33\nNevada,4,40,44\nTotal,7,70,77\n"

if not Path(CHROMIUM).exists() and not os.environ.get("CI"):
    pytest.skip("no chromium here (apt-get install chromium); browser tests run in CI", allow_module_level=True)

pytestmark = pytest.mark.browser


@pytest.fixture
def browser(monkeypatch):
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop on this thread; the test's own ORM calls are
    # still plain synchronous code, which Django would otherwise refuse.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield browser
        browser.close()


@pytest.fixture
def staff(transactional_db):
    """Published data, the roles (a flush by an earlier transactional test removes them) and two users."""
    call_command("load_reports", verbosity=0)
    import_module("stats.migrations.0007_roles").create_roles(django_apps, None)
    editor = User.objects.create_user("dana", password="a-long-test-password-1", is_staff=True)
    editor.groups.add(Group.objects.get(name="Data editor"))
    viewer = User.objects.create_user("vic", password="a-long-test-password-2", is_staff=True)
    viewer.groups.add(Group.objects.get(name="Viewer"))
    return editor, viewer


def log_in(page, base: str, username: str, password: str) -> None:
    page.goto(f"{base}/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("input[type=submit]")
    page.wait_for_selector("#user-tools")


def test_editor_imports_corrects_and_reverts_viewer_cannot_import(browser, live_server, staff, tmp_path):
    ARTIFACTS.mkdir(exist_ok=True)
    Source.objects.create(
        slug="impact-2025", title="Our 2025 Impact", kind="impact_report", edition=2025, document="not-yet.txt"
    )
    base = live_server.url
    csv_file = tmp_path / "states-2025.csv"
    csv_file.write_text(STATES_2025)

    refused = []  # what the Content-Security-Policy blocked: must stay empty
    page = browser.new_page()
    page.on("console", lambda message: refused.append(message.text) if "Content Security Policy" in message.text else 0)
    log_in(page, base, "dana", "a-long-test-password-1")
    page.goto(f"{base}/admin/stats/observation/")
    page.click("a.import_link")
    page.set_input_files("#id_file", str(csv_file))
    page.select_option("#id_shape", "table")
    page.fill("#id_indicator", "missing.cases")
    page.fill("#id_year", "2025")
    page.fill("#id_source", "impact-2025")
    page.fill("#id_rows", "state")
    page.fill("#id_columns", "case_status")
    page.click("input[value=Preview]")
    counts = page.text_content(".preview-counts")
    assert "9 new" in " ".join(counts.split())
    assert "every printed total equals the sum of its parts" in page.text_content(".total-checks")
    page.screenshot(path=str(ARTIFACTS / "import-preview.png"), full_page=True)
    assert not Observation.objects.filter(year=2025).exists()

    page.click("input[value='Confirm import']")
    page.wait_for_selector(".messagelist")
    assert "9 new" in page.text_content(".messagelist")
    nevada = Observation.objects.get(year=2025, source__slug="impact-2025", quote__startswith="Nevada", value=4)

    page.goto(f"{base}/admin/stats/observation/{nevada.id}/change/")
    assert page.locator("#id_correction_reason").count() == 0  # one reason field
    page.fill("#id_corrected_value", "5")
    page.fill("#id_reason", "erratum received from NCMEC")
    page.click("input[name=_continue]")
    page.wait_for_selector(".messagelist")
    history = page.text_content("table.history")
    assert "erratum received from NCMEC" in history
    assert "corrected value — → 5" in history
    page.click("a.historylink")  # the HISTORY button: who, why, old → new as printed
    entries = page.locator("table.history tbody tr")
    assert entries.count() == 2
    assert entries.nth(1).locator("td.user").text_content() == "dana"
    assert entries.nth(1).locator("td.reason").text_content() == "erratum received from NCMEC"
    assert "corrected value — → 5" in entries.nth(1).locator("td.change").text_content()
    page.screenshot(path=str(ARTIFACTS / "observation-history.png"), full_page=True)
    page.goto(f"{base}/admin/stats/observation/{nevada.id}/change/")

    query = json.dumps({"query": NEVADA_ACTIVE_2025})
    request = urllib.request.Request(f"{base}/graphql", query.encode(), {"Content-Type": "application/json"})
    items = json.load(urllib.request.urlopen(request))["data"]["observations"]["items"]
    assert items == [{"valueText": "4", "correctedValue": "5"}]

    page.click("table.history a.revert >> nth=0")
    assert [r.locator("td").all_text_contents() for r in page.locator("#revert-changes tbody tr").all()] == [
        ["corrected value", "5", "—"],
        ["correction reason", "erratum received from NCMEC", "—"],
    ]
    page.fill("#id_reason", "the erratum was withdrawn")
    page.click("input[value=Revert]")
    page.wait_for_selector(".messagelist")
    nevada.refresh_from_db()
    assert nevada.corrected_value is None
    assert "the erratum was withdrawn" in page.text_content("table.history")

    viewer_page = browser.new_page()
    viewer_page.on("console", lambda m: refused.append(m.text) if "Content Security Policy" in m.text else 0)
    log_in(viewer_page, base, "vic", "a-long-test-password-2")
    viewer_page.goto(f"{base}/admin/stats/observation/")
    assert viewer_page.locator("a.import_link").count() == 0
    assert viewer_page.goto(f"{base}/admin/stats/observation/import/").status == 403
    assert refused == []


MISMATCHED_2025 = "MISSING STATE,ACTIVE,RESOLVED,GRAND TOTAL\nAK,3,30,33\nNevada,4,40,45\nTotal,7,70,78\n"


@pytest.fixture
def database_url(staff) -> str:
    from django.db import connection

    db = connection.settings_dict
    host = db["HOST"]
    if host.startswith("/"):
        return f"postgresql://{db['USER']}@:{db['PORT']}/{db['NAME']}?host={host}"
    return f"postgresql://{db['USER']}:{db['PASSWORD']}@{host}:{db['PORT']}/{db['NAME']}"


def preview_file(page, base: str, path: Path) -> None:
    page.goto(f"{base}/admin/stats/observation/import/")
    page.set_input_files("#id_file", str(path))
    page.select_option("#id_shape", "table")
    page.fill("#id_indicator", "missing.cases")
    page.fill("#id_year", "2025")
    page.fill("#id_source", "impact-2025")
    page.fill("#id_rows", "state")
    page.fill("#id_columns", "case_status")
    page.click("input[value=Preview]")
    page.wait_for_selector(".preview-counts")


def test_a_new_editor_imports_a_2025_state_table_that_does_not_add_up(browser, database_url, tmp_path):
    """The issue's "done when", through `manage.py serve` as the README starts it."""
    from bench import server

    ARTIFACTS.mkdir(exist_ok=True)
    csv_file = tmp_path / "states-2025.csv"
    csv_file.write_text(MISMATCHED_2025)
    with server.running(database_url, workers=1, SECRET_KEY="done-when-test-" * 4, HTTPS="0") as port:
        base = f"http://127.0.0.1:{port}"
        page = browser.new_page()
        log_in(page, base, "dana", "a-long-test-password-1")

        # The new report's source, created in the admin first (as the README says).
        page.goto(f"{base}/admin/stats/source/add/")
        page.fill("#id_slug", "impact-2025")
        page.fill("#id_title", "Our 2025 Impact")
        page.select_option("#id_kind", "impact_report")
        page.fill("#id_edition", "2025")
        page.fill("#id_document", "impact-2025.pdf")
        page.click("input[name=_save]")
        page.wait_for_selector(".messagelist")
        assert Source.objects.get(slug="impact-2025").edition == 2025

        preview_file(page, base, csv_file)
        assert " ".join(page.text_content(".preview-counts").split()) == "9 new, 0 changed, 0 unchanged, 0 invalid."
        headers = page.locator("#new-figures thead th").all_text_contents()
        assert headers == ["row", "indicator", "year", "source", "Case status", "State/territory", "value as printed"]
        rows = {tuple(" ".join(c.split()) for c in row.locator("td").all_text_contents())
                for row in page.locator("#new-figures tbody tr").all()}  # fmt: skip
        assert ("3", "missing.cases", "2025", "impact-2025", "Active", "Nevada", "4") in rows
        assert ("3", "missing.cases", "2025", "impact-2025", "Total", "Nevada", "45") in rows
        assert ("4", "missing.cases", "2025", "impact-2025", "Resolved", "Total", "70") in rows
        assert "case_status parts of state=NV sum to 44, total 45" in page.text_content(".total-checks")
        page.screenshot(path=str(ARTIFACTS / "import-preview-mismatch.png"), full_page=True)

        page.click("input[value='Confirm import']")  # not settled: refused, the same preview again
        page.wait_for_selector("#import-errors")
        assert "the parts do not add up" in page.text_content("#import-errors")
        assert not Observation.objects.filter(year=2025).exists()

        page.check("#id_sum_mismatch")
        page.fill("#id_sum_mismatch_note", "the report prints 45 and 78; parts as printed")
        page.click("input[value='Confirm import']")
        page.wait_for_selector(".messagelist")
        assert "9 new, 0 changed, 0 unchanged, 2 flagged as a sum mismatch" in page.text_content(".messagelist")
        flagged = Observation.objects.filter(year=2025, flag="sum_mismatch").order_by("value")
        assert [(o.value_text, o.note) for o in flagged] == [
            ("45", "the report prints 45 and 78; parts as printed"),
            ("78", "the report prints 45 and 78; parts as printed"),
        ]
        out = io.StringIO()
        call_command("check_data", stdout=out)  # raises CommandError on a mismatch no flag explains
        assert "every mismatch is explained" in out.getvalue()

        preview_file(page, base, csv_file)  # the same file again
        assert " ".join(page.text_content(".preview-counts").split()) == "0 new, 0 changed, 9 unchanged, 0 invalid."
        assert page.locator("#id_sum_mismatch").count() == 0  # the stored flags explain the totals
        page.screenshot(path=str(ARTIFACTS / "import-reupload.png"), full_page=True)
