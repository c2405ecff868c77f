"""Walked lists (stats.graphql.compiled) answer exactly what strawberry answers, with no more queries,
and never bypass a field extension, a permission class or a schema extension's resolve."""

import json

import pytest
import strawberry
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from strawberry.extensions import FieldExtension, SchemaExtension
from strawberry.permission import BasePermission
from strawberry_django.optimizer import DjangoOptimizerExtension

from stats.graphql.compiled import Walked
from stats.graphql.loaders import BatchingExecutionContext
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


def compare(client, query: str, variables: dict | None = None) -> int:
    """Strawberry's answer with the walk off and on: the same bytes, no more queries. Returns the lists walked."""
    with override_settings(GRAPHQL_CACHE_MB=0, GRAPHQL_COMPILED=False):
        plain, plain_queries = post(client, query, variables)
    assert "errors" not in json.loads(plain)
    walked = Walked.lists
    with override_settings(GRAPHQL_CACHE_MB=0):
        again, again_queries = post(client, query, variables)
    assert again == plain
    assert again_queries <= plain_queries
    return Walked.lists - walked


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_readme_examples_answer_the_same_walked(name, client, db):
    compare(client, EXAMPLES[name])


@pytest.mark.parametrize("name", sorted(MORE))
def test_fragments_aliases_directives_and_variables_answer_the_same_walked(name, client, db):
    for variables in VARIABLES.get(name, [None]):
        assert compare(client, MORE[name], variables) >= 1


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_query_count_shapes_answer_the_same_walked_on_10000_rows(name, datasets, client, db):  # noqa: F811
    compare(client, shaped(name, "qcbig"))


def test_a_page_of_observations_is_walked(client, db):
    query = (
        '{ observations(filter: {indicators: ["missing.cases"]}, limit: 50) { items { id value members { code } } } }'
    )
    assert compare(client, query) == 1  # the items, members included, in one walk


def test_an_error_is_strawberrys_error(client, db):
    query = 'query T($i: String!) { table(indicator: $i, year: 2021, rows: "state") '
    query += "{ title rows { cells { valueText } } } }"
    compare(client, query, {"i": "missing.cases"})
    response = client.post(
        "/graphql", json.dumps({"query": query, "variables": {"i": "missing.casez"}}), content_type="application/json"
    )
    assert response.json()["data"] is None
    assert "missing.casez" in response.json()["errors"][0]["message"]


# -- extensions and permissions: never bypassed ----------------------------------------------------


class Deny(BasePermission):
    message = "Not for you."

    def has_permission(self, source, info, **kwargs) -> bool:
        return False


class Upper(FieldExtension):
    def resolve(self, next_, source, info, **kwargs):
        return next_(source, info, **kwargs).upper()


class Counting(SchemaExtension):
    resolved = 0

    def resolve(self, _next, root, info, *args, **kwargs):
        Counting.resolved += 1
        return _next(root, info, *args, **kwargs)


@strawberry.type
class Item:
    name: str
    shout: str = strawberry.field(extensions=[Upper()])
    secret: str | None = strawberry.field(permission_classes=[Deny])


@strawberry.type
class Root:
    @strawberry.field
    def items(self) -> list[Item]:
        return [Item(name=f"n{i}", shout=f"s{i}", secret=f"x{i}") for i in range(3)]


def small_schema(*extensions) -> strawberry.Schema:
    return strawberry.Schema(
        query=Root, extensions=[DjangoOptimizerExtension, *extensions], execution_context_class=BatchingExecutionContext
    )


def test_a_list_with_a_field_extension_or_a_permission_is_left_to_strawberry():
    walked = small_schema()
    plain = strawberry.Schema(query=Root)
    for document in ("{ items { name shout } }", "{ items { name secret } }"):
        before = Walked.lists
        ours, theirs = walked.execute_sync(document), plain.execute_sync(document)
        assert Walked.lists == before  # not walked
        assert (ours.data, [e.message for e in ours.errors or ()]) == (
            theirs.data,
            [e.message for e in theirs.errors or ()],
        )
    assert walked.execute_sync("{ items { shout } }").data == {"items": [{"shout": f"S{i}"} for i in range(3)]}
    denied = walked.execute_sync("{ items { secret } }")
    assert denied.data == {"items": [{"secret": None}] * 3}
    assert {e.message for e in denied.errors} == {"Not for you."}
    before = Walked.lists
    assert walked.execute_sync("{ items { name } }").data == {"items": [{"name": f"n{i}"} for i in range(3)]}
    assert Walked.lists == before + 1  # plain fields only: walked


def test_a_schema_extension_that_wraps_every_resolver_turns_the_walk_off():
    before, Counting.resolved = Walked.lists, 0
    result = small_schema(Counting).execute_sync("{ items { name } }")
    assert result.data == {"items": [{"name": f"n{i}"} for i in range(3)]}
    assert Walked.lists == before
    assert Counting.resolved == 1 + 3  # the root field and each item's name, as strawberry runs it
