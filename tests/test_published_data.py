"""Spot checks of the published data in the warehouse, figures read off the documents."""

from decimal import Decimal

import pytest

from stats.models import Member, Observation

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
