"""Spot checks of the published data in the warehouse, figures read off the documents."""

import io
import shlex
import shutil
from decimal import Decimal
from pathlib import Path

import pytest
import yaml
from django.apps import apps
from django.core.management import CommandError, call_command

from stats.models import Member, Observation
from stats.services.observations import observation_update
from stats.services.reports import FIXTURES_DIR

pytestmark = pytest.mark.django_db


def figure(indicator, year, source=None, **members):
    qs = Observation.objects.filter(indicator__code=indicator, year=year)
    qs = qs.filter(source__slug=source) if source else qs.preferred()
    ids = [Member.objects.get(dimension__code=d, code=c).id for d, c in members.items()]
    return (
        qs.with_dimensions_exactly(sorted(Member.objects.get(id=i).dimension_id for i in ids)).with_members(ids).get()
    )


def test_table_cells_and_totals_as_printed():
    assert figure("missing.cases", 2021, state="CA", case_status="active").value_text == "388"
    assert figure("missing.cases", 2024, state="TX").value == Decimal("2508")
    assert figure("missing.cases", 2020, state="INTL").value == Decimal("33")
    assert figure("missing.cases", 2020, age_group="15_17", race_ethnicity="white").value == Decimal("7521")
    assert figure("missing.cases", 2024, case_type="endangered_runaway", case_status="resolved").value == 25103
    assert figure("cvip.request_images", 2024, agency="local_state_icac").value == Decimal("6686134")
    assert figure("cst.likely_victims", 2024, age="age_17", gender="male").value == 223
    assert figure("cybertipline.reports", 2024, incident_type="online_enticement").value == 546333


def test_the_same_member_spelled_differently_is_one_member():
    alaska_2021 = figure("missing.cases", 2021, state="AK")
    alaska_2024 = figure("missing.cases", 2024, state="AK")
    assert alaska_2021.member_ids == alaska_2024.member_ids
    assert alaska_2021.quote.startswith("Alaska")
    assert alaska_2024.quote.startswith("AK")


def test_a_garbled_figure_is_stored_as_printed_with_its_correction():
    reports = figure("cybertipline.reports", 2021, source="impact-2021")
    assert reports.value_text == "29,397,681 million"
    assert reports.value == Decimal("29397681000000")
    assert reports.flag == "garbled"
    assert reports.corrected_value == Decimal("29397681")


def test_a_missing_cell_is_flagged_and_derived():
    north_dakota = figure("missing.cases", 2021, state="ND", case_status="active")
    assert north_dakota.value is None
    assert north_dakota.flag == "missing_value"
    assert north_dakota.corrected_value == 3


def test_qualifiers_and_periods_as_printed():
    calls = figure("calls.hotline_cumulative", 2021, source="impact-2021")
    assert (calls.qualifier, calls.value, calls.period, calls.since) == ("more_than", 5_000_000, "cumulative", 1984)
    ratio = figure("cst.runaways_likely_victims", 2021)
    assert (ratio.value_text, ratio.value) == ("1 in 6", 6)
    plus = figure("take_it_down.submissions", 2024)
    assert {plus.value_text, *plus.restatements.values_list("value_text", flat=True)} == {"83,000", "83,000+"}


def test_two_documents_keep_their_own_figure_and_the_years_report_is_preferred():
    both = Observation.objects.filter(indicator__code="amber.recoveries_cumulative", year=2020)
    assert dict(both.values_list("source__slug", "value")) == {"impact-2020": 1053, "key-facts-2020": 1064}
    assert both.preferred().get().source.slug == "impact-2020"


def test_a_repeated_sentence_is_a_restatement_not_a_second_figure():
    files = figure("cybertipline.files", 2021, source="impact-2021")
    assert files.value == Decimal("84991735")
    repeated = files.restatements.get()
    assert (repeated.value_text, repeated.flag) == ("65.4 million", "repeats_other_year")


# Published data vs staff edits: load_reports never undoes a correction.

ROOT = Path(__file__).resolve().parent.parent


def deployment_load_command() -> list[str]:
    """The load_reports command line of docker-compose.yml's one-off job, as every deployment (and
    every `docker compose up`) runs it."""
    job = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["migrate"]["command"]
    for part in " ".join(job).split("&&"):
        words = shlex.split(part)
        if "manage.py" in words and "load_reports" in words:
            return words[words.index("load_reports") :]
    raise AssertionError("docker-compose.yml's migrate job does not load the published reports")


def history(obs) -> list[tuple]:
    return list(obs.events.order_by("pgh_id").values_list("pgh_label", "value", "corrected_value", "version",
                                                          "pgh_context__metadata__reason"))  # fmt: skip


def test_staff_corrections_survive_container_restarts_and_load_reports(client, editor):
    texas = figure("missing.cases", 2021, state="TX", case_status="active")
    california = figure("missing.cases", 2021, state="CA", case_status="active")
    mutation = """mutation($id: ID!) {
      correctObservation(id: $id, value: "254", reason: "NCMEC erratum", expectedVersion: 1) {
        ... on Observation { version } ... on OperationInfo { messages { message } } } }"""
    answer = client.post(
        "/graphql", {"query": mutation, "variables": {"id": texas.id}}, content_type="application/json"
    )
    assert answer.json() == {"data": {"correctObservation": {"version": 2}}}
    form = {"value_text": "389", "value": "389", "qualifier": california.qualifier, "quote": california.quote,
            "flag": "", "note": "", "corrected_value": "", "correction_reason": "", "expected_version": 1,
            "reason": "misread the scan", "restatements-TOTAL_FORMS": 0, "restatements-INITIAL_FORMS": 0}  # fmt: skip
    assert client.post(f"/admin/stats/observation/{california.id}/change/", form).status_code == 302
    texas.refresh_from_db()
    california.refresh_from_db()
    assert (texas.corrected_value, california.value_text, california.value) == (254, "389", 389)
    before = [(texas.corrected_value, texas.version, history(texas)),
              (california.value, california.value_text, california.version, history(california))]  # fmt: skip

    command = deployment_load_command()
    for _ in range(2):  # the deployment started twice
        out = io.StringIO()
        call_command(*command, stdout=out)
    assert "--if-empty" in command
    assert "not loaded" in out.getvalue()
    out = io.StringIO()
    call_command("load_reports", stdout=out)
    assert "0 new, 0 changed" in out.getvalue()
    assert "2 kept as staff changed them" in out.getvalue()
    assert f"observation #{texas.id} " in out.getvalue()
    assert "corrected_value stored 254, fixtures —" in out.getvalue()
    assert f"observation #{california.id} " in out.getvalue()
    assert "value_text stored 389, fixtures 388" in out.getvalue()
    with pytest.raises(CommandError, match=r"2 figure\(s\) differ from fixtures/ and were left alone"):
        call_command("load_reports", "--strict", stdout=io.StringIO())

    texas.refresh_from_db()
    california.refresh_from_db()
    after = [(texas.corrected_value, texas.version, history(texas)),
             (california.value, california.value_text, california.version, history(california))]  # fmt: skip
    assert after == before


def fixtures_without_a_figure(tmp_path: Path) -> tuple[Path, dict, Observation]:
    """A copy of fixtures/ whose impact-2021 document no longer has its first figure, that figure, and its row."""
    fixtures = tmp_path / "fixtures"
    shutil.copytree(FIXTURES_DIR, fixtures)
    document = fixtures / "sources" / "impact-2021.yaml"
    data = yaml.safe_load(document.read_text())
    dropped = data["figures"].pop(0)
    document.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    stored = Observation.objects.get(indicator__code=dropped["indicator"], year=dropped["year"],
                                     source__slug="impact-2021", value_text=str(dropped["text"]))  # fmt: skip
    return fixtures, dropped, stored


def test_figures_no_longer_in_the_yaml_are_listed_and_removed_only_when_asked(tmp_path):
    fixtures, dropped, stored = fixtures_without_a_figure(tmp_path)

    out = io.StringIO()
    call_command("load_reports", "--directory", str(fixtures), stdout=out)
    assert f"observation #{stored.id} ({dropped['indicator']} {dropped['year']}, impact-2021" in out.getvalue()
    assert "is no longer in fixtures/" in out.getvalue()
    assert Observation.objects.filter(id=stored.id).exists()
    with pytest.raises(CommandError, match="left alone"):
        call_command("load_reports", "--directory", str(fixtures), "--strict", stdout=io.StringIO())

    call_command("load_reports", "--directory", str(fixtures), "--remove-missing", stdout=io.StringIO())
    assert not Observation.objects.filter(id=stored.id).exists()
    event = apps.get_model("stats", "ObservationEvent").objects.get(pgh_obj_id=stored.id, pgh_label="delete")
    assert event.pgh_context.metadata["reason"] == "no longer in the published reports (fixtures/)"
    call_command("load_reports", "--directory", str(fixtures), "--strict", stdout=io.StringIO())  # nothing left alone


def test_a_figure_staff_changed_is_not_removed_with_the_yaml(tmp_path):
    fixtures, _, stored = fixtures_without_a_figure(tmp_path)
    observation_update(observation_id=stored.id, changes={"note": "checked against the PDF"}, reason="review")
    out = io.StringIO()
    call_command("load_reports", "--directory", str(fixtures), "--remove-missing", stdout=out)
    assert "0 removed" in out.getvalue()
    assert Observation.objects.get(id=stored.id).note == "checked against the PDF"
