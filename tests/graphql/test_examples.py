"""Every README example runs against the published data, with its figures checked."""

from decimal import Decimal

from django.contrib.auth.models import Permission, User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from graphql import parse, validate
from graphql.validation import NoDeprecatedCustomRule

from stats.graphql.cache import responses
from stats.graphql.schema import schema
from stats.models import Observation
from tests.graphql.conftest import readme_examples

EXAMPLES = readme_examples()


def test_the_readme_has_eight_to_twelve_examples():
    assert 8 <= len(EXAMPLES) <= 12


def test_the_examples_use_no_deprecated_field():
    """The README shows the names to use: one meaning per field, never a deprecated shape."""
    for name, document in EXAMPLES.items():
        assert [e.message for e in validate(schema._schema, parse(document), [NoDeprecatedCustomRule])] == [], name


def test_report_table(gql):
    table = gql(EXAMPLES["report-table"])["table"]
    assert [c["code"] for c in table["columns"]] == ["active", "resolved"]
    runaway = table["rows"][0]
    assert runaway["member"]["label"] == "Endangered Runaway"
    assert [c["valueText"] for c in runaway["cells"]] == ["2,440", "22,734"]
    assert [c["displayText"] for c in runaway["cells"]] == ["2,440", "22,734"]
    assert runaway["total"]["valueText"] == "25,174"
    assert [c["valueText"] for c in table["totalRow"]["cells"]] == ["2,809", "24,924"]
    assert table["totalRow"]["total"]["valueText"] == "27,733"


def test_state_series(gql):
    series = gql(EXAMPLES["state-series"])["series"]
    assert [(p["year"], p["displayValue"]) for p in series] == [(2020, "3588"), (2021, "3597"), (2024, "2508")]
    assert [p["displayText"] for p in series] == ["3,588", "3,597", "2,508"]
    assert [p["comparedWithYear"] for p in series] == [None, 2020, 2021]
    assert series[1]["change"] == "9"
    assert series[2]["percentChange"] == "-30.28"  # (2,508 - 3,597) / 3,597


def test_topic_indicators(gql):
    indicators = {i["code"]: i for i in gql(EXAMPLES["topic-indicators"])["indicators"]}
    assert indicators["cybertipline.reports"]["years"] == [2019, 2020, 2021, 2023, 2024]
    assert indicators["cybertipline.reports"]["unit"] == "COUNT"


def test_aggregate(gql):
    groups = gql(EXAMPLES["aggregate"])["aggregate"]
    found = [(g["members"][0]["code"], g["sum"], g["total"]["displayValue"], g["matchesPrintedTotal"]) for g in groups]
    assert found == [("active", "2535", "2535", True), ("resolved", "27033", "27033", True)]
    assert groups[1]["total"]["valueText"] == "27,033"
    assert groups[0]["count"] == 54  # 50 states, DC, PR, GU and Unknown


def test_source_walk(gql):
    source = gql(EXAMPLES["source-walk"])["source"]
    assert source["document"] == "004_8307a554f128111e.txt"
    page = source["observationPage"]
    assert (page["totalCount"], page["hasNextPage"]) == (len(page["items"]), False)
    by_indicator = {(o["indicator"]["code"], tuple(m["label"] for m in o["members"])): o for o in page["items"]}
    total = by_indicator[("missing.cases", ())]
    assert (total["valueText"], total["displayText"]) == ("28,886", "28,886")
    assert {r["valueText"] for r in total["restatements"]} == {"28886", "", "0"}
    assert by_indicator[("cybertipline.reports", ())]["valueText"] == "36.2 million"


def test_all_sources(gql):
    page = gql(EXAMPLES["all-sources"])["observations"]
    assert page["totalCount"] == 2
    assert {(i["source"]["slug"], i["valueText"], i["isPreferred"]) for i in page["items"]} == {
        ("impact-2020", "1,053", True),
        ("key-facts-2020", "1,064", False),
    }
    assert {i["source"]["documentKind"] for i in page["items"]} == {"IMPACT_REPORT", "FACT_SHEET"}


def test_flagged(gql):
    page = gql(EXAMPLES["flagged"])["observations"]
    assert page["totalCount"] >= 8
    garbled = next(i for i in page["items"] if i["flag"] == "GARBLED")
    assert (garbled["valueText"], garbled["value"]) == ("29,397,681 million", "29397681000000")  # as printed
    assert (garbled["correctedValue"], garbled["displayValue"]) == ("29397681", "29397681")
    assert garbled["displayText"] == "29,397,681"


def test_coverage(gql):
    data = gql(EXAMPLES["coverage"])
    entries = {e["indicator"]["code"]: e for e in data["coverage"]}
    assert [b["key"] for b in entries["missing.cases"]["printedBreakdowns"]] == ["total", "case_status"]
    assert entries["cybertipline.reports"]["observations"] == 1
    assert data["dataVersion"] > 0


def test_members(gql):
    members = {m["code"]: m for m in gql(EXAMPLES["members"])["dimension"]["members"]}
    assert members["local_state_icac"]["otherSpellings"] == ["Local/State/ICAC"]


def test_correct(gql, client):
    editor = User.objects.create_user("editor", password="pw-for-tests-only")
    editor.user_permissions.add(Permission.objects.get(codename="change_observation"))
    client.force_login(editor)
    client.get("/graphql", HTTP_ACCEPT="text/html")  # sets the csrftoken cookie, as GraphiQL's page does
    obs = Observation.objects.get(
        indicator__code="cybertipline.reports", year=2021, source__slug="impact-2021", member_ids=[]
    )
    response = gql.post(EXAMPLES["correct"], {"id": str(obs.id)}, HTTP_X_CSRFTOKEN=client.cookies["csrftoken"].value)
    result = response.json()["data"]["correctObservation"]
    assert result["valueText"] == "29,397,681 million"
    assert result["correctedValue"] == result["displayValue"] == "29397681"
    assert result["version"] == 2
    obs.refresh_from_db()
    assert obs.correction_reason == "stray 'million' in the 2021 report"
    assert obs.value == Decimal("29397681000000")


def test_restatements_of_a_page_through_fragments(gql):
    """A page prefetches restatements (one query) only when asked for, also inside fragments."""
    page = '{ observations(filter: {indicators: ["missing.cases"], breakdown: []}) { items { id %s } } }'
    fragment = " fragment F on Observation { restatements { valueText } }"
    gql(page % "year")  # loads the catalog (kept per data version)
    answers, queries = [], []
    documents = [
        page % "restatements { valueText }",
        page % "...F" + fragment,
        page % "... on Observation { restatements { valueText } }",
    ]
    for document in documents:
        responses.clear()
        with CaptureQueriesContext(connection) as ctx:
            answers.append(gql(document)["observations"]["items"])
        queries.append(len(ctx.captured_queries))
    assert any(i["restatements"] for i in answers[0])
    assert answers[0] == answers[1] == answers[2]
    assert queries[0] == queries[1] == queries[2] <= 5
    responses.clear()
    with CaptureQueriesContext(connection) as ctx:
        assert "restatements" not in gql(page % "year")["observations"]["items"][0]
    assert len(ctx.captured_queries) == queries[0] - 1
