"""Each client address has a budget of server time per window for answers not served from the cache."""

import json

import pytest
from django.core.cache import caches


@pytest.fixture
def budget(settings):
    caches["default"].clear()
    settings.GRAPHQL_RATE_BUDGET_MS = 1  # the first computed answer spends it
    settings.GRAPHQL_RATE_WINDOW_S = 600
    yield settings
    caches["default"].clear()


def ask(client, query: str, address: str = "203.0.113.7"):
    return client.post("/graphql", json.dumps({"query": query}), content_type="application/json", REMOTE_ADDR=address)


def test_a_client_over_its_budget_gets_a_429_with_retry_after(db, client, budget):
    assert ask(client, "{ dataVersion }").status_code == 200
    refused = ask(client, '{ indicator(code: "missing.cases") { name } }')
    assert refused.status_code == 429
    assert 0 < int(refused["Retry-After"]) <= 600
    (error,) = refused.json()["errors"]
    assert error["message"].startswith("This address has used ")
    assert "ms of server time on uncached answers in the last 600 s (budget 1 ms)" in error["message"]


def test_cached_answers_are_free_and_other_addresses_are_not_limited(db, client, budget):
    assert ask(client, "{ dataVersion }").status_code == 200
    assert ask(client, "{ dataVersion }").status_code == 200  # the same answer, from the response cache
    assert ask(client, "{ topics { code } }", address="198.51.100.1").status_code == 200
    assert ask(client, "{ topics { name } }").status_code == 429


def test_staff_are_never_limited(editor, client, budget):
    for code in ("missing.cases", "cybertipline.reports", "missing.cases_share"):
        response = client.post(
            "/graphql", json.dumps({"query": f'{{ indicator(code: "{code}") {{ name }} }}'}),
            content_type="application/json", REMOTE_ADDR="203.0.113.7",
        )  # fmt: skip
        assert response.status_code == 200


def test_a_budget_of_zero_turns_it_off(db, client, budget):
    budget.GRAPHQL_RATE_BUDGET_MS = 0
    for code in ("missing.cases", "cybertipline.reports"):
        assert ask(client, f'{{ indicator(code: "{code}") {{ name }} }}').status_code == 200
