"""Observation pages read as rows (stats.graphql.rows) answer exactly what model instances answer."""

import json

import pytest
from django.test import override_settings
from graphql import get_named_type, is_leaf_type

from stats.graphql import rows
from stats.graphql.schema import schema


def every_row_field() -> str:
    """A page asking every field rows can answer (new ones included), objects with their plain leaves."""
    schema_types = schema._schema.type_map
    observation = schema_types["Observation"]
    selected = []
    for name in sorted(rows._row_reads()):
        field_type = get_named_type(observation.fields[name].type)
        if is_leaf_type(field_type):
            selected.append(name)
        else:
            leaves = [n for n, f in field_type.fields.items() if is_leaf_type(get_named_type(f.type)) and not f.args]
            selected.append(name + " { " + " ".join(leaves) + " }")
    filter_ = 'filter: {indicators: ["missing.cases", "cybertipline.reports"]}'
    return (
        "{ observations("
        + filter_
        + ", limit: 400) { totalCount hasNextPage items { __typename "
        + " ".join(selected)
        + " } } }"
    )


def answer(client, query: str) -> bytes:
    with override_settings(GRAPHQL_CACHE_MB=0):
        response = client.post("/graphql", json.dumps({"query": query}), content_type="application/json")
    assert response.status_code == 200
    assert "errors" not in response.json()
    return response.content


@pytest.mark.parametrize("walked", [True, False])
def test_rows_answer_what_model_instances_answer(client, db, monkeypatch, walked):
    with override_settings(GRAPHQL_COMPILED=walked):
        as_rows = answer(client, every_row_field())
        monkeypatch.setattr(rows, "row_columns", lambda asked: None)  # model instances, as before rows
        as_models = answer(client, every_row_field())
    assert as_rows == as_models
    assert {"value", "effectiveValue", "flag", "members", "indicator"} <= rows._row_reads().keys()
    assert len(json.loads(as_rows)["data"]["observations"]["items"]) > 100


def test_a_column_not_read_is_an_error_naming_it_not_the_types_attribute():
    row = object.__new__(rows.ObservationRow)
    row.__dict__ = {"id": 1, "value": 5}
    assert row.value == 5
    for name in ("flag", "corrected_value", "indicator_id", "pk"):  # flag is also the GraphQL type's field
        with pytest.raises(AttributeError, match=f"Observation.{name} was not read"):
            getattr(row, name)
