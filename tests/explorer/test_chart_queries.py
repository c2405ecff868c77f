"""The explorer's charts ask the public API (stats/static/explorer/charts.js) with valid documents that use
no deprecated field: the explorer reads the API as any frontend should."""

import re
from pathlib import Path

from graphql import parse, specified_rules, validate
from graphql.validation import NoDeprecatedCustomRule

from stats.graphql.schema import schema

CHARTS = Path(__file__).resolve().parent.parent.parent / "stats" / "static" / "explorer" / "charts.js"


def test_the_charts_documents_are_valid_and_current():
    documents = dict(re.findall(r"const ([A-Z_]+) = `(query .*?)`;", CHARTS.read_text(), re.S))
    assert set(documents) == {"SERIES", "TABLE"}
    for name, document in documents.items():
        errors = validate(schema._schema, parse(document), [*specified_rules, NoDeprecatedCustomRule])
        assert [e.message for e in errors] == [], name
