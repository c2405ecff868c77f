"""The items budget: a request that could return too many list items is refused before it runs."""

import pytest
from django.test import Client, override_settings

from stats.graphql.budget import estimated_items
from stats.graphql.limits import parse_document

PAGE = "observations(limit: {n}) {{ items {{ id {inner} }} }}"


def estimate(query: str, variables: dict | None = None, operation: str | None = None) -> int:
    return estimated_items(parse_document(query), variables, operation)


@pytest.mark.parametrize(
    ("query", "items"),
    [
        ("{ " + PAGE.format(n=100, inner="") + " }", 100),
        ("{ " + PAGE.format(n=10000, inner="members { code }") + " }", 20000),  # members: one per figure
        ("{ " + PAGE.format(n=1000, inner="history { at }") + " }", 1000 + 1000 * 100),  # history's default page
        ("{ " + PAGE.format(n=1000, inner="history(limit: 2) { at }") + " }", 1000 + 2000),
        ("{ a: " + PAGE.format(n=500, inner="") + " b: " + PAGE.format(n=500, inner="") + " }", 1000),
        ("{ sources { observationPage(limit: 50) { items { id } } } }", 1 + 50),
        ("{ sources { observations { id } } }", 1 + 1000),  # the deprecated list counts its cap
        ("query Q($n: Int!) { " + PAGE.format(n="$n", inner="") + " }", 7),
        ("{ ...F } fragment F on Query { " + PAGE.format(n=300, inner="") + " }", 300),
        ("{ observations(limit: 99999999) { items { id } } }", 10000),  # capped at the page maximum
        ("{ dataVersion }", 0),
    ],
)
def test_the_estimate_multiplies_page_sizes_down_the_nesting(db, query, items):
    assert estimate(query, {"n": 7}) == items


def test_only_the_operation_to_run_is_estimated(db):
    query = "query Small { dataVersion } query Big { " + PAGE.format(n=10000, inner="") + " }"
    assert estimate(query, None, "Small") == 0
    assert estimate(query, None, "Big") == 10000


@override_settings(GRAPHQL_MAX_ITEMS=5000)
@pytest.mark.parametrize("method", ["get", "post"])
def test_a_request_over_the_budget_is_refused_before_any_query(db, method, django_assert_num_queries):
    client = Client()
    document = "{ " + " ".join(f"a{i}: " + PAGE.format(n=1000, inner="") for i in range(6)) + " }"
    with django_assert_num_queries(0):
        if method == "get":
            response = client.get("/graphql", {"query": document}, HTTP_ACCEPT="application/json")
        else:
            response = client.post("/graphql", {"query": document}, content_type="application/json")
    assert response.status_code == 400
    assert response.json() == {
        "errors": [
            {
                "message": "The request could return up to 6,000 list items; at most 5,000 are allowed. "
                "Ask for smaller pages (limit), fewer aliases, or nested lists in separate requests."
            }
        ]
    }


@override_settings(GRAPHQL_MAX_ITEMS=5000)
def test_variables_count_as_the_page_size_they_give(db):
    client = Client()
    document = "query($n: Int!) { observations(limit: $n) { items { id history { at } } } }"
    small = client.post("/graphql", {"query": document, "variables": {"n": 40}}, content_type="application/json")
    assert small.status_code == 200, small.content
    assert len(small.json()["data"]["observations"]["items"]) == 40
    large = client.post("/graphql", {"query": document, "variables": {"n": 50}}, content_type="application/json")
    assert large.status_code == 400
    assert "up to 5,050 list items" in large.json()["errors"][0]["message"]
