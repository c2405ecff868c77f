"""The public explorer in a real Chromium: every page type with the published data, no console
error, no request leaving the site, the map and the table agreeing with the database, every
control reachable by keyboard, no serious axe-core violation, GraphiQL offline, and a page on
another allowed origin calling the API.

Drives Debian's chromium (apt-get install chromium) with Playwright; skips only where no chromium
is installed and CI is unset. Screenshots of each page type go to test-artifacts/.
"""

import json
import os
import shutil
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.core.management import call_command

from stats.lookups import CatalogLookup
from stats.models import Observation

CHROMIUM = "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else shutil.which("chromium") or "chromium"
ARTIFACTS = Path(__file__).resolve().parent.parent.parent / "test-artifacts"
SERIOUS = {"serious", "critical"}
FOCUSABLE = "a[href], button, input, select, textarea, summary, [tabindex]:not([tabindex='-1'])"

if not Path(CHROMIUM).exists() and not os.environ.get("CI"):
    pytest.skip("no chromium here (apt-get install chromium); browser tests run in CI", allow_module_level=True)

pytestmark = pytest.mark.browser


@pytest.fixture
def browser(monkeypatch):
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # the test's own ORM calls beside Playwright's loop
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"],
        )  # fmt: skip
        yield browser
        browser.close()


@pytest.fixture
def published(transactional_db):
    """The published data (an earlier transactional test may have flushed it)."""
    call_command("load_reports", verbosity=0)


class Watched:
    """A page whose console errors, page errors and requests to other origins are recorded
    (those requests are refused, as on a network without the internet)."""

    def __init__(self, browser, *origins: str) -> None:
        self.allowed = {urlsplit(o).netloc for o in origins}
        self.errors: list[str] = []
        self.outside: list[str] = []
        self.page = browser.new_page(viewport={"width": 1280, "height": 900})
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.route("**/*", self.only_local)

    def only_local(self, route) -> None:
        url = route.request.url
        if url.startswith(("data:", "blob:")) or urlsplit(url).netloc in self.allowed:
            route.continue_()
        else:
            self.outside.append(url)
            route.abort()

    def clean(self) -> None:
        assert self.errors == []
        assert self.outside == []


def serious_violations(page) -> list[str]:
    found = Axe().run(page).response["violations"]
    return [f"{v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes']][:5]}" for v in found
            if v["impact"] in SERIOUS]  # fmt: skip


def tab_through(page) -> set[str]:
    """Press Tab until focus comes back round; the ids (data-k) of every element focused."""
    page.evaluate(
        """sel => document.querySelectorAll(sel).forEach((el, i) => el.setAttribute('data-k', String(i)))""", FOCUSABLE
    )
    reached: list[str] = []
    total = page.locator(FOCUSABLE).count()
    for _ in range(total + 5):
        page.keyboard.press("Tab")
        key = page.evaluate("document.activeElement && document.activeElement.getAttribute('data-k')")
        if key is not None and reached and key == reached[0]:
            break
        if key is not None:
            reached.append(key)
    return set(reached)


def visible_controls(page) -> set[str]:
    return set(
        page.evaluate(
            """sel => [...document.querySelectorAll(sel)]
                 .filter(el => el.checkVisibility({visibilityProperty: true, contentVisibilityAuto: true}))
                 .map(el => el.getAttribute('data-k'))""",
            FOCUSABLE,
        )
    )


def test_a_newcomer_finds_missing_children_by_state_in_2024_in_two_clicks(browser, live_server, published):
    ARTIFACTS.mkdir(exist_ok=True)
    base = live_server.url
    watched = Watched(browser, base)
    page = watched.page

    page.goto(f"{base}/")
    assert "CyberTipline reports in 2024" in page.text_content("main")
    assert serious_violations(page) == []
    page.screenshot(path=str(ARTIFACTS / "explorer-home.png"), full_page=True)
    assert tab_through(page) >= visible_controls(page)

    # Click 1: the search box; click 2: the result.
    page.fill("#q", "missing children by state 2024")
    page.click("form.search button")
    page.click("ul.results a >> text=Missing children cases")
    assert page.url == f"{base}/indicators/missing.cases/?year=2024"

    texas = Observation.objects.preferred().get(
        indicator__code="missing.cases", year=2024, member_ids=[CatalogLookup.load().member("state", "Texas").id]
    )
    for chart in page.locator("figure[data-chart]").all():  # charts are drawn as they come near the screen
        chart.scroll_into_view_if_needed()
        chart.locator("svg").first.wait_for()
    on_map = page.locator("figure[data-chart=map] svg title", has_text="Texas:")
    assert on_map.text_content() == f"Texas: {texas.value_text}"
    in_table = page.locator("table[data-rows=state] tr[data-member=TX] td").last
    assert in_table.text_content().strip() == texas.value_text
    assert texas.value_text == "2,508"
    assert serious_violations(page) == []
    page.screenshot(path=str(ARTIFACTS / "explorer-indicator.png"), full_page=True)
    page.locator("section", has=page.locator("#map-title")).screenshot(path=str(ARTIFACTS / "explorer-map.png"))

    with page.expect_download() as download:
        page.click("text=Download these figures (CSV)")
    assert download.value.suggested_filename == "missing.cases.csv"
    assert "Texas" in Path(download.value.path()).read_text()

    page.click(f"tr[data-member=TX] a[href='/figures/{texas.id}/']")
    assert texas.quote in page.text_content("blockquote")
    assert f"/figures/{texas.id}/" in page.text_content(".citation")
    assert serious_violations(page) == []
    page.screenshot(path=str(ARTIFACTS / "explorer-figure.png"), full_page=True)
    assert tab_through(page) >= visible_controls(page)

    page.click(f"dd a[href='/sources/{texas.source.slug}/']")
    assert "Flagged figures and corrections" in page.text_content("main")
    assert serious_violations(page) == []
    page.screenshot(path=str(ARTIFACTS / "explorer-source.png"))

    for path in ("/downloads/", "/search?q=cybertipline", "/indicators/cybertipline.reports/"):
        page.goto(base + path)
        page.wait_for_load_state("networkidle")
        assert serious_violations(page) == [], path
    page.locator("figure[data-chart=series] svg").first.wait_for()
    watched.clean()


def test_graphiql_works_offline(browser, live_server, published):
    watched = Watched(browser, live_server.url)
    page = watched.page
    page.goto(f"{live_server.url}/graphql")
    page.locator(".graphiql-execute-button").click()
    page.locator(".result-window", has_text='"table"').wait_for()
    assert "Endangered Runaway" in page.text_content(".result-window")
    page.screenshot(path=str(ARTIFACTS / "explorer-graphiql.png"))
    watched.clean()


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def test_a_page_on_another_allowed_origin_queries_the_api(browser, live_server, published, settings, tmp_path):
    api = live_server.url
    (tmp_path / "index.html").write_text(f"""<!doctype html><title>app</title><pre id="out"></pre><script>
      const query = '{{ indicator(code: "missing.cases") {{ name years }} }}';
      Promise.all([
        fetch("{api}/graphql?" + new URLSearchParams({{query}})).then(r => r.json()),
        fetch("{api}/graphql", {{method: "POST", headers: {{"Content-Type": "application/json"}},
                                 body: JSON.stringify({{query}})}}).then(r => r.json()),
      ]).then(answers => document.getElementById("out").textContent = JSON.stringify(answers),
              error => document.getElementById("out").textContent = "failed: " + error);
    </script>""")
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(QuietHandler, directory=str(tmp_path)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    app = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        settings.CORS_ALLOWED_ORIGINS = [app]
        allowed = Watched(browser, api, app)
        allowed.page.goto(f"{app}/index.html")
        allowed.page.wait_for_function("document.getElementById('out').textContent !== ''")
        answers = json.loads(allowed.page.text_content("#out"))
        assert [a["data"]["indicator"]["name"] for a in answers] == ["Missing children cases"] * 2
        allowed.clean()

        settings.CORS_ALLOWED_ORIGINS = []
        refused = Watched(browser, api, app)
        refused.page.goto(f"{app}/index.html")
        refused.page.wait_for_function("document.getElementById('out').textContent !== ''")
        assert refused.page.text_content("#out").startswith("failed:")
        assert any("CORS policy" in e for e in refused.errors)
    finally:
        server.shutdown()
