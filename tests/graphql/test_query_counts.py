"""No N+1: each example-shaped query costs the same number of SQL queries for 10 and 10,000 rows."""

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from stats.graphql.cache import responses
from stats.models import Dimension, Indicator, Member, MemberAlias, Observation, Source, Topic
from stats.models.observations import DATA_VERSION_SQL
from tests.builders import Builder

QUERIES = {
    "report-table": '{ table(indicator: "P.cases", year: 2000, rows: "P_state", columns: "P_status") '
    "{ title columns { label } rows { member { label } cells { valueText flag } total { valueText } } "
    "totalRow { cells { valueText } } } }",
    "series": '{ series(indicator: "P.cases", members: [{dimension: "P_state", member: "S0"}, '
    '{dimension: "P_status", member: "Active"}]) { year value change percentChange source { slug } } }',
    "page": '{ observations(filter: {indicators: ["P.cases"]}, limit: 100) '
    "{ totalCount items { id year valueText indicator { code topic { code } } source { slug } "
    "members { label dimension { code } } restatements { valueText } } } }",
    "page-flat": '{ observations(filter: {indicators: ["P.cases"]}, limit: 100) '
    "{ totalCount items { id year value valueText members { code } } } }",
    "aggregate": '{ aggregate(indicator: "P.cases", over: "P_state", groupBy: ["P_status"]) '
    "{ year members { code } sum count printedTotal } }",
    "source-walk": '{ source(slug: "P-source") { title observations { year valueText indicator { code } '
    "members { label } restatements { valueText } } } }",
    "coverage": '{ coverage(topic: "P") { indicator { code } breakdowns observations } }',
    "indicator-walk": '{ indicators(topic: "P") { code years topic { name } } }',
}
SIZES = {"qcsmall": 10, "qcbig": 10_000}


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
    small, big = (count_queries(gql, QUERIES[name].replace("P", prefix)) for prefix in SIZES)
    assert big == small


@pytest.mark.parametrize("name", sorted(QUERIES))
def test_a_repeated_read_costs_one_query(name, datasets, gql):
    query = QUERIES[name].replace("P", "qcbig")
    first = gql.post(query)
    with CaptureQueriesContext(connection) as ctx:
        again = gql.post(query)
    assert (first["X-Cache"], again["X-Cache"]) == ("miss", "hit")
    assert again.content == first.content
    assert [q["sql"] for q in ctx.captured_queries] == [DATA_VERSION_SQL]
