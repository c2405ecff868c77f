"""One meaning per field: the same names for the same figures in every type, errors for every unknown
code, defaults that answer, and the old shapes kept (deprecated, with a reason) for existing clients."""

import pytest

from stats import reads
from stats.graphql.schema import schema
from stats.lookups import CatalogLookup, LookupFailed
from stats.models import Observation

GARBLED = {"indicator": "cybertipline.reports", "year": 2021}  # printed "29,397,681 million", corrected
FIGURE_FIELDS = "value valueText correctedValue displayValue displayText"


def fields_of(type_name: str) -> dict:
    return schema._schema.type_map[type_name].fields


def test_every_type_that_carries_a_figure_has_the_same_names():
    for type_name in ("Observation", "TableCell", "SeriesPoint"):
        assert {"value", "valueText", "correctedValue", "displayValue", "displayText"} <= set(fields_of(type_name))
    assert {"displayValue", "displayText"} <= set(fields_of("AggregateGroup"))
    assert {"value", "displayValue", "displayText"} <= set(fields_of("Restatement"))


def test_a_corrected_figure_reads_the_same_on_an_observation_and_a_series_point(gql):
    observation = """{ observations(filter: {indicators: ["cybertipline.reports"], year: 2021, breakdown: []}) {
        items { FIGURE effectiveValue } } }""".replace("FIGURE", FIGURE_FIELDS)
    obs = gql(observation)["observations"]["items"][0]
    assert obs == {
        "value": "29397681000000",  # as printed: "29,397,681 million"
        "valueText": "29,397,681 million",
        "correctedValue": "29397681",
        "displayValue": "29397681",
        "displayText": "29,397,681",
        "effectiveValue": "29397681",  # deprecated, same meaning as before
    }
    series = gql('{ series(indicator: "cybertipline.reports") { year value FIGURE } }'.replace("FIGURE", FIGURE_FIELDS))
    point = next(p for p in series["series"] if p["year"] == 2021)
    assert point["value"] == "29397681"  # deprecated: still the corrected figure, as before
    assert {k: point[k] for k in ("valueText", "correctedValue", "displayValue", "displayText")} == {
        k: obs[k] for k in ("valueText", "correctedValue", "displayValue", "displayText")
    }


def test_display_text_keeps_the_printed_qualifier(gql):
    query = """{ observations(filter: {indicators: ["calls.hotline_cumulative"], year: 2020, breakdown: []}) {
        items { valueText qualifier displayValue displayText } } }"""
    assert gql(query)["observations"]["items"] == [
        {
            "valueText": "5 million",
            "qualifier": "MORE_THAN",
            "displayValue": "5000000",
            "displayText": "more than 5 million",
        }
    ]


def test_a_figure_that_is_not_printed_has_no_display_text(gql):
    query = """{ observations(filter: {indicators: ["cvip.offender_relationships"], year: 2021,
        members: [{dimension: "offender_relationship", member: "neighbor_family_friend"}]}) {
        items { valueText value displayValue displayText } } }"""
    assert gql(query)["observations"]["items"] == [
        {"valueText": "", "value": None, "displayValue": None, "displayText": None}
    ]


def test_table_cells_carry_the_same_names(gql):
    query = """{ table(indicator: "missing.cases", year: 2021, rows: "case_type", columns: "case_status") {
        rows { cells { FIGURE } total { FIGURE } } } }""".replace("FIGURE", FIGURE_FIELDS)
    rows = gql(query)["table"]["rows"]
    cells = [c for r in rows for c in [*r["cells"], r["total"]] if c["valueText"]]
    assert len(cells) > 10
    for cell in cells:  # nothing corrected in this table: the figure to show is the printed one
        assert cell["correctedValue"] is None
        assert cell["displayValue"] == cell["value"]
        assert cell["displayText"] == cell["valueText"]
    assert rows[0]["total"]["displayText"] == "25,174"


def test_an_aggregate_names_its_printed_total_like_any_figure(gql):
    query = """{ aggregate(indicator: "missing.cases", over: "state", groupBy: ["case_status"], years: [2024]) {
        members { code } sum displayValue displayText printedTotal matchesPrintedTotal
        total { value valueText displayValue source { slug } } } }"""
    groups = gql(query)["aggregate"]
    assert [g["members"][0]["code"] for g in groups] == ["active", "resolved"]
    for group in groups:
        assert group["displayValue"] == group["sum"]
        assert group["total"]["displayValue"] == group["printedTotal"] == group["sum"]
        assert group["matchesPrintedTotal"] is True
    assert groups[1]["displayText"] == "27,033"
    assert groups[1]["total"]["valueText"] == "27,033"


@pytest.mark.parametrize(
    "query",
    [
        '{ indicators(topic: "cybertiplin") { code } }',
        '{ observations(filter: {topic: "cybertiplin"}) { totalCount } }',
        '{ coverage(topic: "cybertiplin") { year } }',
    ],
)
def test_an_unknown_topic_is_an_error_with_a_suggestion(gql, query):
    assert gql.errors(query) == ["unknown topic 'cybertiplin' (did you mean \"cybertipline\"?)"]


def test_a_known_topic_still_filters(gql):
    indicators = gql('{ indicators(topic: "cybertipline") { topic { code } } }')["indicators"]
    assert {i["topic"]["code"] for i in indicators} == {"cybertipline"}
    entries = gql('{ coverage(topic: "cybertipline") { indicator { topic { code } } } }')["coverage"]
    assert {e["indicator"]["topic"]["code"] for e in entries} == {"cybertipline"}


def test_a_series_reads_in_the_indicators_own_period(gql):
    query = 'query S($p: Period) { series(indicator: "amber.recoveries_cumulative", period: $p) { year displayValue } }'
    own = gql(query)["series"]
    assert [p["year"] for p in own] == [2020, 2021, 2024]
    assert own == gql(query, {"p": "CUMULATIVE"})["series"]
    assert gql(query, {"p": "ANNUAL"})["series"] == []  # asked for explicitly: there are none
    levels = gql('{ series(indicator: "cvip.actively_traded_children") { year observation { period } } }')["series"]
    assert [p["year"] for p in levels] == [2020, 2021, 2024]
    assert {p["observation"]["period"] for p in levels} == {"POINT_IN_TIME"}


def test_an_annual_series_keeps_its_default(gql):
    query = '{ series(indicator: "missing.cases") { year observation { period } } }'
    points = gql(query)["series"]
    assert {p["observation"]["period"] for p in points} == {"ANNUAL"}


def test_a_series_point_says_which_year_it_is_compared_with(gql):
    query = """{ series(indicator: "missing.cases", members: [{dimension: "state", member: "Texas"}]) {
        year change percentChange comparedWithYear } }"""
    points = gql(query)["series"]
    assert [(p["year"], p["comparedWithYear"]) for p in points] == [(2020, None), (2021, 2020), (2024, 2021)]
    assert points[2]["percentChange"] == "-30.28"  # 2024 against 2021: the gap is visible


def test_coverage_names_its_breakdowns_by_dimension_code(gql):
    query = """{ coverage(year: 2023) { indicator { code } breakdowns observations
        printedBreakdowns { key dimensions { code } observations } } }"""
    entries = {e["indicator"]["code"]: e for e in gql(query)["coverage"]}
    missing = entries["missing.cases"]
    assert [(b["key"], [d["code"] for d in b["dimensions"]]) for b in missing["printedBreakdowns"]] == [
        ("total", []),
        ("case_status", ["case_status"]),
    ]
    assert missing["breakdowns"] == [[], ["case_status"]]  # deprecated shape, unchanged
    for entry in entries.values():
        assert entry["observations"] == sum(b["observations"] for b in entry["printedBreakdowns"])


def test_a_two_way_breakdown_is_keyed_in_display_order(gql):
    query = "{ coverage(year: 2021) { indicator { code } printedBreakdowns { key dimensions { code } } } }"
    entries = {e["indicator"]["code"]: e for e in gql(query)["coverage"]}
    keys = {b["key"]: [d["code"] for d in b["dimensions"]] for b in entries["missing.cases"]["printedBreakdowns"]}
    two_way = [key for key in keys if "+" in key]
    assert two_way
    for key in two_way:
        assert key == "+".join(keys[key])


def test_source_kinds_are_an_upper_case_enum(gql):
    sources = gql("{ sources { slug kind documentKind } }")["sources"]
    kinds = {(s["kind"], s["documentKind"]) for s in sources}
    assert kinds == {("impact_report", "IMPACT_REPORT"), ("fact_sheet", "FACT_SHEET")}


def test_history_events_are_an_upper_case_enum(gql):
    query = """{ observations(filter: {flag: GARBLED}) { items { flag history { kind label qualityFlag flag } } } }"""
    item = gql(query)["observations"]["items"][0]
    event = item["history"][0]
    assert (event["kind"], event["label"]) == ("INSERT", "insert")
    assert (event["qualityFlag"], event["flag"]) == (item["flag"], "garbled")


def test_a_history_page_says_whether_more_follow(gql):
    obs = Observation.objects.get(
        indicator__code="cybertipline.reports", year=2021, source__slug="impact-2021", member_ids=[]
    )
    for note in ("checked once", "checked twice"):  # two more events after the load's insert
        Observation.objects.filter(id=obs.id).update(note=note)
    query = """query H($offset: Int!) { observations(filter: {indicators: ["cybertipline.reports"], year: 2021,
        breakdown: []}) { items { id historyPage(limit: 2, offset: $offset) { totalCount hasNextPage offset limit
        items { kind } } } } }"""
    pages = []
    for offset in (0, 2):
        item = next(i for i in gql(query, {"offset": offset})["observations"]["items"] if i["id"] == str(obs.id))
        pages.append(item["historyPage"])
    assert [(p["totalCount"], p["hasNextPage"], [e["kind"] for e in p["items"]]) for p in pages] == [
        (3, True, ["INSERT", "UPDATE"]),
        (3, False, ["UPDATE"]),
    ]


def test_other_spellings_leave_out_the_code_and_label(gql):
    query = '{ dimension(code: "agency") { members { code label aliases otherSpellings } } }'
    members = {m["code"]: m for m in gql(query)["dimension"]["members"]}
    icac = members["local_state_icac"]
    assert icac["otherSpellings"] == ["Local/State/ICAC"]
    assert {icac["label"], "Local/State/ICAC"} <= set(icac["aliases"])  # deprecated, unchanged
    assert members["military"]["otherSpellings"] == []
    for member in members.values():
        assert member["otherSpellings"] == [a for a in member["aliases"] if a not in (member["code"], member["label"])]


def test_a_table_without_columns_has_one_printed_title(gql):
    table = gql(
        '{ table(indicator: "missing.cases", year: 2024, rows: "state") { title totalRow { cells { valueText } } } }'
    )
    title = table["table"]["title"]
    assert " / " not in title
    assert (
        title
        == "Missing children reported to NCMEC between 1/1/2024 and 12/31/2024 by state/U.S. territory and case status"
    )
    assert table["table"]["totalRow"]["cells"][0]["valueText"]  # the grand total printed elsewhere is still there


def test_the_old_shapes_are_deprecated_with_a_reason():
    deprecated = {
        f"{type_name}.{name}": field.deprecation_reason
        for type_name, graphql_type in schema._schema.type_map.items()
        if not type_name.startswith("__")
        for name, field in (getattr(graphql_type, "fields", None) or {}).items()
        if field.deprecation_reason
    }
    for name in (
        "Observation.effectiveValue",
        "SeriesPoint.value",
        "AggregateGroup.printedTotal",
        "CoverageEntry.breakdowns",
        "Source.kind",
        "Member.aliases",
        "HistoryEvent.label",
        "HistoryEvent.flag",
        "Observation.history",
    ):
        assert deprecated.get(name), name
    assert "displayValue" in deprecated["SeriesPoint.value"]


# -- the same reads without GraphQL (admin, commands, explorer) ----------------------------------


def test_the_reads_answer_without_graphql(db):
    lookup = CatalogLookup.load()
    groups = reads.aggregate(lookup, "missing.cases", "state", years=[2024], group_by=["case_status"])
    assert [(g.members[0].code, g.matches_total) for g in groups] == [("active", True), ("resolved", True)]
    entries = reads.coverage(lookup, year=2023, topic="missing_children")
    assert {e.indicator.topic.code for e in entries} == {"missing_children"}
    with pytest.raises(LookupFailed, match="unknown topic"):
        reads.coverage(lookup, topic="nothing")
    with pytest.raises(reads.Refused, match="shares and ratios"):
        reads.aggregate(lookup, "cst.likely_victims_share", "gender")
    points = reads.series(lookup, "amber.recoveries_cumulative")
    assert [p.compared_with_year for p in points] == [None, 2020, 2021]
