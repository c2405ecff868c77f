"""Compiled execution (stats.graphql.compiled) answers exactly what strawberry answers, with no more queries."""

import json

import pytest
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from stats.graphql.schema import schema
from tests.graphql.conftest import readme_examples
from tests.graphql.test_query_counts import QUERIES as SHAPES
from tests.graphql.test_query_counts import (
    datasets,  # noqa: F401  (the 10,000-row warehouse fixture)
    shaped,
)

EXAMPLES = {name: doc for name, doc in readme_examples().items() if "mutation" not in doc}

MORE = {
    "fragments, aliases, typename": """
        query Page($n: Int!) {
          first: observations(filter: {indicators: ["missing.cases"], year: 2021}, limit: $n) {
            __typename totalCount items { ...Figure }
          }
          again: observations(filter: {indicators: ["missing.cases"], year: 2021}, limit: $n, offset: $n) {
            items { ... on Observation { id qualifier } }
          }
        }
        fragment Figure on Observation { id valueText effectiveValue flag members { code dimension { code } } }
    """,
    "skip and include": """
        query S($detail: Boolean!) {
          series(indicator: "missing.cases", members: [{dimension: "state", member: "Texas"}]) {
            year value @include(if: $detail) valueText @skip(if: $detail) source { slug @include(if: true) }
          }
        }
    """,
    "one source's figures": '{ observations(filter: {source: "impact-2020", allSources: true}, limit: 1000) '
    "{ items { id valueText restatements { valueText } indicator { code topic { code } } source { slug } "
    "members { label } } } }",
}
VARIABLES = {
    "fragments, aliases, typename": [{"n": 5}, {"n": 40}],
    "skip and include": [{"detail": True}, {"detail": False}],
}


def post(client, query: str, variables: dict | None = None) -> tuple[bytes, int]:
    """The answer's bytes and the number of SQL queries it took."""
    with CaptureQueriesContext(connection) as queries:
        response = client.post(
            "/graphql", json.dumps({"query": query, "variables": variables or {}}), content_type="application/json"
        )
    assert response.status_code == 200
    return response.content, len(queries)


# Root fields that return querysets (strawberry-django's optimizer plans their joins), and batched nested
# fields (stats.graphql.loaders: they find their siblings by the executor's path): left to strawberry.
LEFT_TO_STRAWBERRY = {"members", "topic-indicators", "indicator-walk", "source-walk", "source-walk-deprecated"}


def compare(client, query: str, variables: dict | None = None, compiled: bool = True) -> None:
    with override_settings(GRAPHQL_CACHE_MB=0):
        first, first_queries = post(client, query, variables)  # strawberry, which learns the document
        assert "errors" not in json.loads(first)
        answered = schema.compiled.answered
        again, again_queries = post(client, query, variables)
    assert schema.compiled.answered == answered + compiled
    assert again == first
    assert again_queries <= first_queries


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_readme_examples_answer_the_same_compiled(name, client, db):
    compare(client, EXAMPLES[name], compiled=name not in LEFT_TO_STRAWBERRY)


@pytest.mark.parametrize("name", sorted(MORE))
def test_fragments_aliases_directives_and_variables_answer_the_same_compiled(name, client, db):
    for variables in VARIABLES.get(name, [None]):
        compare(client, MORE[name], variables)
        with override_settings(GRAPHQL_CACHE_MB=0, GRAPHQL_COMPILED=False):
            plain, _ = post(client, MORE[name], variables)
        assert post(client, MORE[name], variables)[0] == plain


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_query_count_shapes_answer_the_same_compiled_on_10000_rows(name, datasets, client, db):  # noqa: F811
    compare(client, shaped(name, "qcbig"), compiled=name not in LEFT_TO_STRAWBERRY)


def test_an_error_after_learning_is_strawberrys_error(client, db):
    query = 'query T($i: String!) { table(indicator: $i, year: 2021, rows: "state") { title } }'
    compare(client, query, {"i": "missing.cases"})
    response = client.post(
        "/graphql", json.dumps({"query": query, "variables": {"i": "missing.casez"}}), content_type="application/json"
    )
    assert response.json()["data"] is None
    assert "missing.casez" in response.json()["errors"][0]["message"]


def test_documents_it_cannot_run_are_left_to_strawberry(client, db):
    nested_arguments = '{ indicator(code: "missing.cases") { code observations(year: 2021) { valueText } } }'
    root_queryset = "{ sources { slug } }"
    mutation = 'mutation { flagObservation(id: "1", flag: GARBLED, note: "n") { __typename } }'
    batched = '{ source(slug: "impact-2020") { observations { id } } indicator(code: "missing.cases") { years } }'
    for document in (nested_arguments, root_queryset, mutation, batched):
        post(client, document)
        before = schema.compiled.answered
        post(client, document)
        assert schema.compiled.answered == before
        assert schema.compiled.plan(document) is None
