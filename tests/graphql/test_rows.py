"""Observation pages read as rows (stats.graphql.rows) answer exactly what model instances answer."""

import json

import pytest
from django.test import override_settings

from stats.graphql import rows

EVERY_ROW_FIELD = """
{ observations(filter: {indicators: ["missing.cases", "cybertipline.reports"]}, limit: 400) {
    totalCount hasNextPage
    items {
      __typename id year period since asOf value valueText qualifier quote table note correctedValue
      correctionReason isPreferred version flag effectiveValue
      members { code label dimension { code } }
      indicator { code unit topic { code } }
      source { slug kind edition }
    }
} }"""


def answer(client, query: str) -> bytes:
    with override_settings(GRAPHQL_CACHE_MB=0):
        response = client.post("/graphql", json.dumps({"query": query}), content_type="application/json")
    assert response.status_code == 200
    assert "errors" not in response.json()
    return response.content


@pytest.mark.parametrize("walked", [True, False])
def test_rows_answer_what_model_instances_answer(client, db, monkeypatch, walked):
    with override_settings(GRAPHQL_COMPILED=walked):
        assert rows.row_columns is not None
        as_rows = answer(client, EVERY_ROW_FIELD)
        monkeypatch.setattr(rows, "row_columns", lambda asked: None)  # model instances, as before rows
        as_models = answer(client, EVERY_ROW_FIELD)
    assert as_rows == as_models
    assert len(json.loads(as_rows)["data"]["observations"]["items"]) > 100
