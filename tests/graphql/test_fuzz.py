"""Fuzzing: queries and mutations generated from our schema (hypothesis-graphql) through the real view.

Valid documents with random arguments, and invalid ones (wrong types, missing arguments), sent
anonymously. Every answer is a GraphQL answer (HTTP 200 or 400 with JSON errors): never a 500,
never a masked "Unexpected error." (an exception we did not raise on purpose), never a traceback,
and the warehouse is unchanged. A bounded run (FUZZ_EXAMPLES per mode, 150 by default).
"""

import json
import os
from datetime import date

import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import Mode, from_schema, nodes

from stats.graphql.cache import responses
from stats.graphql.schema import schema
from stats.models import DataVersion

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "150"))
SDL = str(schema)
SCALARS = {
    "Decimal": st.decimals(allow_nan=False, allow_infinity=False, places=2, min_value=-1e9, max_value=1e9).map(
        lambda d: nodes.String(str(d))
    ),
    "Date": st.dates(min_value=date(1900, 1, 1)).map(lambda d: nodes.String(d.isoformat())),
}
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,  # the same documents on every run: a failure reproduces
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)


def check_answer(client: Client, document: str) -> None:
    responses.clear()  # every document is executed, not served from memory
    response = client.post("/graphql", json.dumps({"query": document}), content_type="application/json")
    assert response.status_code in (200, 400), (response.status_code, document)
    body = response.json()
    assert "data" in body or "errors" in body, document
    for error in body.get("errors") or []:
        assert error["message"] != "Unexpected error.", document
        assert "Traceback" not in error["message"], document
        assert "extensions" not in error or "exception" not in error["extensions"], document


@pytest.mark.parametrize("mode", [Mode.POSITIVE, Mode.NEGATIVE], ids=["valid", "invalid"])
def test_generated_documents_never_break_the_server(db, mode):
    client = Client()
    version = DataVersion.stamp()

    @FUZZ
    @given(document=from_schema(SDL, custom_scalars=SCALARS, mode=mode))
    def run(document):
        check_answer(client, document)

    run()
    assert DataVersion.stamp() == version  # anonymous fuzzing changed nothing


def test_the_fuzzer_reaches_the_queries_that_compute(db):
    """Guard against a vacuous run: the generator produces the report-shaped queries too."""
    seen = set()

    @settings(max_examples=60, deadline=None, derandomize=True)
    @given(document=from_schema(SDL, fields=["table", "series", "aggregate", "observations"], custom_scalars=SCALARS))
    def run(document):
        seen.update(f for f in ("table", "series", "aggregate", "observations") if f in document)

    run()
    assert seen == {"table", "series", "aggregate", "observations"}
