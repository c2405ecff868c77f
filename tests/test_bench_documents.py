"""The bench measures what clients are told to send: its GraphQL documents are valid against the
schema and use no deprecated field (one meaning per field)."""

import pytest
from graphql import parse, validate
from graphql.validation import NoDeprecatedCustomRule, specified_rules

from bench import load, peer
from bench.__main__ import QUERIES
from stats.graphql.schema import schema

DOCUMENTS = {
    **{f"bench: {name}": document for name, (document, _sql) in QUERIES.items()},
    **{f"load: dashboard {n}": document for n, document in enumerate(load.DASHBOARD)},
    "load: seen": load.SEEN % "missing.cases",
    **{f"peer: {read.name}": read.ours for read in peer.READS},
}


@pytest.mark.parametrize("name", sorted(DOCUMENTS))
def test_bench_documents_are_valid_and_current(name):
    errors = validate(schema._schema, parse(DOCUMENTS[name]), [*specified_rules, NoDeprecatedCustomRule])
    assert [e.message for e in errors] == []
