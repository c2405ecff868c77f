"""The data version read with an uncached read's first query (stats.graphql.folded), never a stale label."""

import pytest
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from stats.graphql import views
from stats.models import DataVersion

COUNT = '{ observations(filter: {indicators: ["%s"]}) { totalCount } }'


@pytest.fixture
def uncached(gql):
    with override_settings(GRAPHQL_CACHE_MB=0):
        gql("{ dataVersion }")  # the process has read a version: the next reads fold theirs in
        yield gql


def test_a_read_sends_the_version_with_its_first_query(uncached, build):
    indicator, source = build.indicator(), build.source()
    for year in (2020, 2021, 2022):
        build.observation(indicator, source, year=year)
    uncached(COUNT % indicator.code)  # the catalog at this version
    with CaptureQueriesContext(connection) as queries:
        response = uncached.post(COUNT % indicator.code)
    assert response.json()["data"]["observations"]["totalCount"] == 3
    (only,) = queries.captured_queries  # one round trip: the version, then the count
    assert "stats_dataversion" in only["sql"]
    assert "COUNT(*)" in only["sql"]
    assert response["X-Data-Version"] == str(DataVersion.stamp()[0])


def test_an_answer_built_at_an_older_version_is_built_again(uncached, build):
    stale = DataVersion.stamp()
    uncached("{ indicators { code } }")  # the catalog as it was
    indicator = build.indicator()  # a write: a new version, a code the old catalog does not know
    build.observation(indicator, build.source())
    views._last_stamp[connection.alias] = stale  # this process last saw the older version
    response = uncached.post(COUNT % indicator.code)
    assert "errors" not in response.json()  # the old catalog's "unknown indicator" was dropped
    assert response.json()["data"]["observations"]["totalCount"] == 1
    assert DataVersion.stamp() != stale
    assert response["X-Data-Version"] == str(DataVersion.stamp()[0])


def test_an_answer_without_a_query_reads_the_version_after_it(uncached, build):
    stale = DataVersion.stamp()
    build.indicator()
    views._last_stamp[connection.alias] = stale
    data = uncached("{ dataVersion }")
    assert data["dataVersion"] == DataVersion.stamp()[0] != stale[0]
