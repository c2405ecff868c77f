"""The explorer's pages and downloads over the published data, through Django's test client."""

import csv
import html
import io
import json
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from frictionless import Package, validate
from openpyxl import load_workbook

from stats.lookups import CatalogLookup
from stats.models import Observation, Source


def body(response) -> bytes:
    """A response's bytes, streamed (the facts downloads) or not."""
    return b"".join(response.streaming_content) if response.streaming else response.content


def texas_2024() -> Observation:
    texas = CatalogLookup.load().member("state", "Texas")
    return Observation.objects.preferred().get(indicator__code="missing.cases", year=2024, member_ids=[texas.id])


def text(response) -> str:
    """The page's text as a reader sees it (tags dropped, entities decoded, spaces collapsed)."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", response.content.decode())).split())


def test_home_shows_each_topics_headline_figures_with_qualifier_and_source(db, client):
    response = client.get("/")
    assert response.status_code == 200
    page = text(response)
    reports = Observation.objects.preferred().get(indicator__code="cybertipline.reports", year=2024, member_ids=[])
    assert f"{reports.value_text} CyberTipline reports in 2024 — {reports.source.title}" in page
    assert "more than 83,000 Take It Down submissions in 2024" in page  # the printed qualifier
    assert 'href="/indicators/missing.cases/"' in response.content.decode()


def test_indicator_page_says_which_year_a_change_is_compared_with_across_a_gap(db, client):
    content = client.get("/indicators/amber.recoveries_cumulative/").content.decode()  # printed 2020, 2021, 2024
    figures = re.search(r'<table class="figures">(.*?)</table>', content, re.S)[1]
    changes = {}
    for row in re.findall(r"<tr>(.*?)</tr>", figures, re.S)[1:]:
        year = re.search(r'<th scope="row">(\d+)</th>', row)[1]
        cells = re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
        changes[int(year)] = " ".join(re.sub(r"<[^>]+>", " ", cells[2]).split())
    assert changes[2020] == "—"
    assert changes[2021].endswith("%")  # against 2020, the year before: no year said
    assert changes[2024].endswith("% since 2021")


def test_search_finds_missing_children_by_state_and_opens_that_year(db, client):
    response = client.get("/search", {"q": "missing children by state, 2024"})
    assert response.status_code == 200
    results = re.search(r'<ul class="results">(.*?)</ul>', response.content.decode(), re.S)[1]
    links = re.findall(r'<li><a href="([^"]+)">([^<]+)</a>', results)
    assert links == [("/indicators/missing.cases/?year=2024", "Missing children cases")]
    assert client.get("/search", {"q": "x" * 201}).status_code == 400


def test_indicator_page_prints_the_years_tables_with_their_sources(db, client):
    response = client.get("/indicators/missing.cases/", {"year": 2024})
    assert response.status_code == 200
    html = response.content.decode()
    texas = texas_2024()
    row = re.search(r'<tr data-member="TX">(.*?)</tr>', html, re.S)[1]
    assert f'<a href="/figures/{texas.id}/">{texas.value_text}</a>' in row
    assert texas.source.title in html
    for chart in ('data-chart="map"', 'data-chart="series"', 'data-rows="case_type"'):
        assert chart in html
    for year in (2020, 2021, 2023, 2024):
        assert f'href="?year={year}#tables"' in html
    notice = client.get("/indicators/missing.cases/", {"year": "1999"})
    assert "has no figures for '1999'; showing 2024" in text(notice)
    assert client.get("/indicators/missing.nothing/").status_code == 404


def test_indicator_page_queries_do_not_grow_with_its_figures(db, client, build):
    """One query per read, whatever the number of years and rows (and no catalog reload)."""
    topic = build.topic()
    state = Source.objects.get(slug="impact-2024")
    indicator = build.indicator(topic=topic)
    client.get("/")  # the catalog is loaded once per data version

    def count() -> int:
        CatalogLookup.cached()
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(f"/indicators/{indicator.code}/").status_code == 200
        return len(ctx.captured_queries)

    build.observation(indicator, state, year=2020, value="1")
    few = count()
    for year in range(2021, 2031):
        build.observation(indicator, state, year=year, value=str(year))
    assert count() == few


def test_source_page_lists_flagged_figures_and_corrections(db, client):
    response = client.get("/sources/impact-2021/")
    assert response.status_code == 200
    garbled = Observation.objects.get(
        source__slug="impact-2021", flag="garbled", indicator__code="cybertipline.reports"
    )
    page = text(response)
    assert "29,397,681 million" in page
    assert "Corrected: 29,397,681" in page
    assert garbled.note.split(".")[0] in page
    assert client.get("/sources/no-such-report/").status_code == 404


def test_figure_permalink_quotes_the_document_and_gives_a_citation(db, client):
    texas = texas_2024()
    response = client.get(f"/figures/{texas.id}/")
    assert response.status_code == 200
    page = text(response)
    assert texas.quote in page
    document = f"Our Impact: 2024 ({texas.source.published})"
    assert (
        f'National Center for Missing & Exploited Children, {document}, table "{texas.table}". '
        f"Missing children cases, 2024, Texas: 2,508. http://testserver/figures/{texas.id}/"
    ) in page
    assert client.get("/figures/999999999/").status_code == 404


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "/indicators/missing.cases.csv",
            lambda: Observation.objects.preferred().filter(indicator__code="missing.cases"),
        ),
        ("/sources/impact-2023.csv", lambda: Observation.objects.filter(source__slug="impact-2023")),
    ],
)
def test_each_page_downloads_what_it_shows_as_csv(db, client, url, expected):
    response = client.get(url)
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(body(response).decode())))
    assert sorted(int(r["observation_id"]) for r in rows) == sorted(expected().values_list("id", flat=True))


def test_figure_csv_is_that_figure(db, client):
    texas = texas_2024()
    rows = list(csv.DictReader(io.StringIO(body(client.get(f"/figures/{texas.id}.csv")).decode())))
    assert [(r["state"], r["value_text"], r["source_slug"]) for r in rows] == [("Texas", "2,508", "impact-2024")]


def test_whole_warehouse_downloads_in_three_formats(db, client):
    total = Observation.objects.count()
    as_csv = list(csv.DictReader(io.StringIO(body(client.get("/downloads/facts.csv")).decode())))
    as_json = json.loads(body(client.get("/downloads/facts.json")))
    sheet = load_workbook(io.BytesIO(body(client.get("/downloads/facts.xlsx")))).active
    assert len(as_csv) == len(as_json) == sheet.max_row - 1 == total
    assert client.get("/downloads/facts.exe").status_code == 404


def test_the_data_package_validates_with_frictionless(db, client, tmp_path):
    descriptor = client.get("/downloads/datapackage.json").json()
    for resource in descriptor["resources"]:
        (tmp_path / resource["path"]).write_bytes(body(client.get(f"/downloads/{resource['path']}")))
    (tmp_path / "datapackage.json").write_text(json.dumps(descriptor))
    report = validate(str(tmp_path / "datapackage.json"))
    assert report.valid, report.flatten(["rowNumber", "fieldName", "type", "note"])[:10]
    facts = Package(str(tmp_path / "datapackage.json")).get_resource("facts").read_rows()
    assert len(facts) == Observation.objects.count()


def test_cors_answers_listed_origins_only(db, client, settings):
    settings.CORS_ALLOWED_ORIGINS = ["https://app.example.org"]
    preflight = client.options(
        "/graphql",
        HTTP_ORIGIN="https://app.example.org",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="content-type",
    )
    assert preflight.status_code == 200
    assert preflight["Access-Control-Allow-Origin"] == "https://app.example.org"
    assert "POST" in preflight["Access-Control-Allow-Methods"]
    assert "content-type" in preflight["Access-Control-Allow-Headers"]
    answer = client.get("/graphql", {"query": "{ dataVersion }"}, HTTP_ORIGIN="https://app.example.org")
    assert answer["Access-Control-Allow-Origin"] == "https://app.example.org"
    assert answer["Access-Control-Allow-Credentials"] == "true"
    stranger = client.get("/graphql", {"query": "{ dataVersion }"}, HTTP_ORIGIN="https://evil.example")
    assert "Access-Control-Allow-Origin" not in stranger
    assert "Access-Control-Allow-Origin" not in client.get("/", HTTP_ORIGIN="https://app.example.org")
