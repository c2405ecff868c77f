"""The published data in fixtures/: it parses, loads, loads idempotently and adds up."""

import io

import pytest
import yaml
from django.core.management import call_command

from stats.models import Flag, Observation, Source
from stats.services.reports import FIXTURES_DIR, reports_read, source_rows

DOCUMENTS = {
    "key-facts-2020": "000_f1c704cba87ee7c9.txt",
    "impact-2021": "001_f2d4e4450c081836.txt",
    "impact-2020": "002_65ee623c87c0ba19.txt",
    "impact-2024": "003_1c47469dd1ca329a.txt",
    "impact-2023": "004_8307a554f128111e.txt",
}


def test_every_fixture_file_is_valid_yaml():
    files = [FIXTURES_DIR / "catalog.yaml", *sorted((FIXTURES_DIR / "sources").glob("*.yaml"))]
    assert len(files) == 1 + len(DOCUMENTS)
    for path in files:
        assert isinstance(yaml.safe_load(path.read_text(encoding="utf-8")), dict), path


def test_one_source_file_per_document():
    _, sources = reports_read()
    assert {s.data["source"]["slug"]: s.data["source"]["document"] for s in sources} == DOCUMENTS


def test_every_source_file_reads_without_errors():
    _, sources = reports_read()
    for source_file in sources:
        rows, errors = source_rows(source_file)
        assert errors == [], [str(e) for e in errors]
        assert rows, source_file.path


@pytest.mark.django_db
def test_every_document_has_observations_in_the_warehouse():
    counts = {s.slug: s.observations.count() for s in Source.objects.all()}
    assert set(DOCUMENTS) <= set(counts)
    assert all(counts[slug] > 0 for slug in DOCUMENTS), counts
    assert sum(counts[slug] for slug in DOCUMENTS) > 1000, counts


@pytest.mark.django_db
def test_loading_twice_changes_nothing():
    out = io.StringIO()
    call_command("load_reports", stdout=out)
    assert "0 new, 0 changed" in out.getvalue(), out.getvalue()


@pytest.mark.django_db
def test_every_printed_total_adds_up_or_is_explained():
    out = io.StringIO()
    call_command("check_data", stdout=out)  # raises CommandError on an unexplained mismatch
    assert "every mismatch is explained" in out.getvalue()


@pytest.mark.django_db
def test_every_flag_says_what_is_wrong_and_every_correction_why():
    flagged = Observation.objects.filter(source__slug__in=DOCUMENTS).exclude(flag="")
    assert flagged.exists()
    assert not flagged.filter(note="").exists(), list(flagged.filter(note="").values_list("id", "quote"))
    assert set(flagged.values_list("flag", flat=True)) <= set(Flag.values)
    corrected = Observation.objects.filter(corrected_value__isnull=False)
    assert not corrected.filter(correction_reason="").exists()


@pytest.mark.django_db
def test_every_observation_keeps_its_printed_text_and_quote():
    missing = Observation.objects.filter(source__slug__in=DOCUMENTS, quote="")
    assert not missing.exists()
    no_text = Observation.objects.filter(source__slug__in=DOCUMENTS, value_text="").exclude(flag=Flag.MISSING_VALUE)
    assert not no_text.exists(), list(no_text.values_list("id", "quote"))
