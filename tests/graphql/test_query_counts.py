"""No N+1: each example-shaped query costs the same number of SQL queries for 10 and 10,000 rows,
and each nested list the same for 1 and 100 parents (sources, indicators, members, observations)."""

import re

import pghistory
import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from stats.graphql.cache import responses
from stats.models import Dimension, Indicator, Member, MemberAlias, Observation, Source, Topic
from stats.models.observations import DATA_VERSION_SQL
from tests.builders import Builder

QUERIES = {
    "report-table": '{ table(indicator: "P.cases", year: 2000, rows: "P_state", columns: "P_status") '
    "{ title columns { label } rows { member { label } cells { valueText flag displayValue displayText } "
    "total { valueText } } "
    "totalRow { cells { valueText } } } }",
    "series": '{ series(indicator: "P.cases", members: [{dimension: "P_state", member: "S0"}, '
    '{dimension: "P_status", member: "Active"}]) { year value displayValue displayText change percentChange '
    "comparedWithYear source { slug } } }",
    "page": '{ observations(filter: {indicators: ["P.cases"]}, limit: 100) '
    "{ totalCount items { id year valueText indicator { code topic { code } } source { slug } "
    "members { label dimension { code } } restatements { valueText } } } }",
    "page-flat": '{ observations(filter: {indicators: ["P.cases"]}, limit: 100) '
    "{ totalCount items { id year value valueText members { code } } } }",
    # Every column-backed field, through a fragment and an alias: only() must load each one (no query per row).
    "page-every-field": '{ observations(filter: {indicators: ["P.cases"]}, limit: 100) '
    "{ items { ...Every v: value } } } "
    "fragment Every on Observation { id year period since asOf value valueText qualifier quote table note "
    "correctedValue correctionReason version flag effectiveValue displayValue displayText members { code } }",
    "aggregate": '{ aggregate(indicator: "P.cases", over: "P_state", groupBy: ["P_status"]) '
    "{ year members { code } sum count printedTotal displayText "
    "total { value displayValue displayText source { slug } restatements { valueText } } } }",
    "source-walk": '{ source(slug: "P-source") { title observationPage(limit: 10000) { totalCount hasNextPage '
    "items { year valueText indicator { code } members { label } restatements { valueText } } } } }",
    "source-walk-deprecated": '{ source(slug: "P-source") { title observations { year valueText '
    "indicator { code } members { label } restatements { valueText } } } }",
    "coverage": '{ coverage(topic: "P") { indicator { code } breakdowns observations '
    "printedBreakdowns { key dimensions { code } observations } } }",
    "indicator-walk": '{ indicators(topic: "P") { code years topic { name } } }',
}
SIZES = {"qcsmall": 10, "qcbig": 10_000}


def shaped(name: str, prefix: str) -> str:
    """The shape's query for one warehouse: its codes' placeholder P (not the P of observationPage) replaced."""
    return re.sub(r"(?<![A-Za-z])P(?![A-Za-z])", prefix, QUERIES[name])


def build_rows(prefix: str, count: int) -> None:
    """``count`` observations of one indicator: states × 2 statuses over years."""
    build = Builder()
    topic = build.topic(prefix)
    indicator = build.indicator(f"{prefix}.cases", topic=topic)
    source = build.source(f"{prefix}-source", edition=2000)
    states = max(1, count // 2 // max(1, count // 1000))
    state_dim = build.dimension(f"{prefix}_state", members=[f"S{i}" for i in range(states)])
    status_dim = build.dimension(f"{prefix}_status", members=["Active", "Resolved"])
    statuses = list(status_dim.members.order_by("order"))
    members = list(state_dim.members.order_by("order"))
    rows = []
    year = 2000
    while len(rows) < count:
        for state in members:
            for status in statuses:
                if len(rows) < count:
                    value = len(rows) % 97
                    rows.append(
                        Observation(
                            indicator=indicator, source=source, year=year, value=value, value_text=str(value),
                            quote="qc", member_ids=[state.id, status.id],
                        )
                    )  # fmt: skip
        year -= 1
    Observation.objects.bulk_create(rows, batch_size=5000)  # the database marks the preferred ones


@pytest.fixture(scope="module")
def datasets(django_db_setup, django_db_blocker):
    """Two warehouses of the same shape, 10 and 10,000 observations, committed for this module."""
    with django_db_blocker.unblock(), transaction.atomic():
        for prefix, count in SIZES.items():
            build_rows(prefix, count)
    yield
    with django_db_blocker.unblock(), transaction.atomic():
        for prefix in SIZES:
            Observation.objects.filter(indicator__code=f"{prefix}.cases").delete()
            MemberAlias.objects.filter(dimension__code__startswith=f"{prefix}_").delete()
            Member.objects.filter(dimension__code__startswith=f"{prefix}_").delete()
            Dimension.objects.filter(code__startswith=f"{prefix}_").delete()
            Indicator.objects.filter(code=f"{prefix}.cases").delete()
            Source.objects.filter(slug=f"{prefix}-source").delete()
            Topic.objects.filter(code=prefix).delete()


def count_queries(gql, query: str) -> int:
    """SQL queries of an uncached answer, the catalog already loaded (it is kept per data version)."""
    gql(query)
    responses.clear()
    with CaptureQueriesContext(connection) as ctx:
        data = gql(query)
    assert all(value for value in data.values()), data
    return len(ctx.captured_queries)


@pytest.mark.parametrize("name", sorted(QUERIES))
def test_query_count_does_not_grow_with_rows(name, datasets, gql):
    small, big = (count_queries(gql, shaped(name, prefix)) for prefix in SIZES)
    assert big == small


@pytest.mark.parametrize("name", sorted(QUERIES))
def test_a_repeated_read_costs_one_query(name, datasets, gql):
    query = shaped(name, "qcbig")
    first = gql.post(query)
    with CaptureQueriesContext(connection) as ctx:
        again = gql.post(query)
    assert (first["X-Cache"], again["X-Cache"]) == ("miss", "hit")
    assert again.content == first.content
    assert [q["sql"] for q in ctx.captured_queries] == [DATA_VERSION_SQL]


# Nested lists under many parents: each shape's parents are the builds below (np.i<n>, np-s<n>, np_d's members).
NESTED = {
    "sources": "{ sources { slug observationPage(limit: 2) { totalCount hasNextPage "
    "items { year restatements { valueText displayText } history { label kind qualityFlag } } } } }",
    "indicators": '{ indicators(topic: "np") { code years observationPage(limit: 2, allSources: true) '
    "{ totalCount items { year source { slug } members { code } history { at } } } "
    "observations(year: 2000) { valueText } } }",
    "members": '{ dimension(code: "np_d") { members { code aliases otherSpellings observationPage(limit: 2) '
    "{ totalCount hasNextPage items { year displayText } } observations { year } } } }",
    "history": '{ observations(filter: {topic: "np"}, limit: 10000) { items { id history { label userId reason } } } }',
    "history-page": '{ observations(filter: {topic: "np"}, limit: 10000) { items { id '
    "historyPage(limit: 1) { totalCount hasNextPage items { kind at } } } } }",
    "through-relations": '{ observations(filter: {topic: "np"}, limit: 10000) { items { '
    "indicator { years observationPage(limit: 1) { items { history { label } } } } "
    "source { observationPage(limit: 1) { totalCount } } members { aliases observations(year: 2000) { id } } } } }",
    "through-aliases": '{ o: observations(filter: {topic: "np"}, limit: 10000) { i: items { '
    "indicator: source { p: observationPage(limit: 1) { totalCount } } "
    "ind: indicator { y: years } m: members { a: aliases } } } }",
    "lists-of-lists": "{ topics { indicators { years observationPage(limit: 1) { totalCount } } } "
    "dimensions { members { aliases observationPage(limit: 1) { items { year } } } } }",
    "pages-of-pages": '{ indicators(topic: "np") { observationPage(limit: 3) { items { '
    "source { observationPage(limit: 2) { items { history { label } } } } } } } }",
}


def grow(first: int, parents: int, rows: int) -> None:
    """Parents ``first`` to ``first + parents - 1``: an indicator, a source and a member each, with ``rows``
    observations (one per year) and each observation changed once more (a second history event)."""
    build = Builder()
    topic = build.topic("np")
    dimension = Dimension.objects.filter(code="np_d").first() or build.dimension("np_d")
    observations = []
    for n in range(first, first + parents):
        indicator = build.indicator(f"np.i{n}", topic=topic)
        source = build.source(f"np-s{n}", edition=2000)
        member = build.member(dimension, f"M{n}", order=n, aliases=[f"member {n}"])
        observations += [
            Observation(indicator=indicator, source=source, year=2000 - r, value=r, value_text=str(r),
                        quote="np", member_ids=[member.id])
            for r in range(rows)
        ]  # fmt: skip
    Observation.objects.bulk_create(observations)  # the database marks the preferred ones
    with pghistory.context(user=1, reason="checked against the printed table"):
        Observation.objects.filter(id__in=[o.id for o in observations]).update(note="checked")


def add_rows(rows: int) -> None:
    """``rows`` more years of observations for every parent built so far."""
    existing = list(Observation.objects.filter(indicator__code__startswith="np.i"))
    more = [
        Observation(indicator_id=o.indicator_id, source_id=o.source_id, year=2001 + r, value=r,
                    value_text=str(r), quote="np", member_ids=o.member_ids)
        for o in existing if o.year == 2000 for r in range(rows)
    ]  # fmt: skip
    Observation.objects.bulk_create(more)


def parents_in(data: dict, name: str) -> int:
    """How many parents the answer has: the shape's outer list (so the test cannot pass on an empty answer)."""
    if name == "lists-of-lists":
        return sum(len(t["indicators"]) for t in data["topics"]) + sum(len(d["members"]) for d in data["dimensions"])
    root = data["dimension"]["members"] if name == "members" else next(iter(data.values()))
    if isinstance(root, dict):
        root = root.get("items", root.get("i"))
    return len(root)


@pytest.mark.parametrize("name", sorted(NESTED))
def test_query_count_does_not_grow_with_parents_or_rows(name, gql, settings):
    settings.GRAPHQL_MAX_ITEMS = 10**9  # these shapes ask for far more than the budget allows: batching at scale
    query = NESTED[name]
    grow(0, 1, rows=2)
    counts = [count_queries(gql, query)]
    one = gql(query)
    grow(1, 99, rows=2)
    counts.append(count_queries(gql, query))
    hundred = gql(query)
    add_rows(20)
    counts.append(count_queries(gql, query))
    assert parents_in(hundred, name) > parents_in(one, name)
    assert counts == [counts[0]] * 3


def page_columns(gql, items: str) -> str:
    """The columns the page's query selects when a page of 5 asks ``items`` of its observations."""
    query = '{ observations(filter: {indicators: ["qcbig.cases"]}, limit: 5) { items { ' + items + " } } }"
    gql(query)
    responses.clear()
    with CaptureQueriesContext(connection) as ctx:
        data = gql(query)
    assert len(data["observations"]["items"]) == 5
    (page,) = [q["sql"] for q in ctx.captured_queries if 'FROM "stats_observation"' in q["sql"]]
    return page.split(" FROM ")[0]


def test_a_page_reads_only_the_columns_it_asks_for(datasets, gql):
    """Columns only (and resolvers of columns): rows of just those columns (stats.graphql.rows), the id always."""
    selected = page_columns(gql, "year value members { code }")
    for column in ("id", "year", "value", "member_ids"):
        assert f'"stats_observation"."{column}"' in selected
    for column in ("indicator_id", "source_id", "quote", "value_text", "note", "corrected_value"):
        assert f'"stats_observation"."{column}"' not in selected


def test_a_page_asking_for_a_relation_reads_its_id_for_the_catalog(datasets, gql):
    """The indicator (or source) is the catalog's, by the id read with the row."""
    selected = page_columns(gql, "year indicator { code }")
    for column in ("id", "indicator_id", "year"):
        assert f'"stats_observation"."{column}"' in selected
    for column in ("source_id", "quote", "value_text", "member_ids", "note", "corrected_value"):
        assert f'"stats_observation"."{column}"' not in selected


def test_a_page_asking_for_restatements_reads_model_instances_of_the_ids_needed(datasets, gql):
    """Model instances, given their indicator and source from the catalog by id and restatements in one query."""
    selected = page_columns(gql, "year restatements { value }")
    for column in ("id", "indicator_id", "source_id", "year"):
        assert f'"stats_observation"."{column}"' in selected
    for column in ("quote", "value_text", "member_ids", "note", "corrected_value"):
        assert f'"stats_observation"."{column}"' not in selected
