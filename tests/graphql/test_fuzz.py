"""Fuzzing: queries and mutations generated from our schema (hypothesis-graphql) through the real view.

Valid documents with random arguments, and invalid ones (wrong types, missing arguments), sent
anonymously. Every answer is a GraphQL answer (HTTP 200 or 400 with JSON errors): never a 500,
never a masked "Unexpected error." (an exception we did not raise on purpose), never a traceback,
and the warehouse is unchanged. A bounded run (FUZZ_EXAMPLES per mode, 150 by default).
"""

import json
import logging
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


# -- hostile shapes (issue #16): within the limits or refused with a 400, never a 500 or an ERROR --
HOSTILE = settings(max_examples=max(EXAMPLES // 3, 30), deadline=None, derandomize=True,
                   suppress_health_check=list(HealthCheck))  # fmt: skip


def check_hostile(client: Client, caplog, body: bytes) -> dict:
    responses.clear()
    caplog.clear()
    response = client.post("/graphql", body, content_type="application/json")
    assert response.status_code in (200, 400), (response.status_code, body[:300])
    if response["Content-Type"].startswith("text/plain"):  # strawberry's own refusals (e.g. no content type)
        assert response.status_code == 400, body[:300]
        assert response.content, body[:300]
        answer = {"errors": [{"message": response.content.decode()}]}
    else:
        answer = response.json()
    for error in answer.get("errors") or []:
        assert error["message"] != "Unexpected error.", body[:300]
        assert len(error["message"]) <= 600
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    return answer


@st.composite
def fragment_graphs(draw) -> str:
    """Fragments on Query spreading later ones (or earlier ones: cycles) 1-4 times each, at random."""
    n = draw(st.integers(1, 40))
    spreads = []
    for _ in range(n):
        targets = draw(st.lists(st.integers(0, n), min_size=1, max_size=4))
        spreads.append(" ".join(f"...F{t}" if t != n else "dataVersion" for t in targets))
    fragments = " ".join(f"fragment F{i} on Query {{ {spreads[i]} }}" for i in range(n))
    return f"{{ ...F0 }} {fragments}"


def test_fragment_graphs_are_measured_or_refused_never_walked_path_by_path(db, caplog):
    client = Client()

    @HOSTILE
    @given(document=fragment_graphs())
    def run(document):
        answer = check_hostile(client, caplog, json.dumps({"query": document}).encode())
        if answer.get("data"):
            assert "dataVersion" in answer["data"]

    run()


LISTS = {
    "years": ("query($v: [Int!]) { aggregate(indicator: \"missing.cases\", over: \"case_type\", years: $v) { sum } }",
              st.integers(1990, 2030)),
    "breakdown": ("query($v: [String!]) { observations(filter: {breakdown: $v}) { totalCount } }",
                  st.sampled_from(["state", "case_type", "nope"])),
    "members": ("query($v: [MemberRef!]) { series(indicator: \"missing.cases\", members: $v) { year } }",
                st.fixed_dictionaries({"dimension": st.just("case_type"), "member": st.text(max_size=5)})),
}  # fmt: skip


def test_huge_lists_are_capped_with_a_message_naming_the_argument(db, caplog):
    from django.conf import settings as django_settings

    client = Client()
    cap = django_settings.GRAPHQL_MAX_LIST_ITEMS

    @HOSTILE
    @given(name=st.sampled_from(sorted(LISTS)), length=st.sampled_from([0, 1, cap, cap + 1, 3 * cap]), data=st.data())
    def run(name, length, data):
        query, items = LISTS[name]
        values = data.draw(st.lists(items, min_size=min(length, 5), max_size=min(length, 5)))
        values = (values * length)[:length] if values else []
        answer = check_hostile(client, caplog, json.dumps({"query": query, "variables": {"v": values}}).encode())
        if length > cap:  # refused for its length, or for its bytes when it is the larger
            (error,) = answer["errors"]
            listed = f"variables.v: {length} items; at most {cap} are allowed."
            assert error["message"] == listed or error["message"].startswith("The request is "), error

    run()


ODD_TEXT = st.text(st.characters(codec=None, categories=None, exclude_categories=()), max_size=40) | st.sampled_from(
    ["\x00", "a\x00b", "\ud800", "x\udfff", "\ufeff", "\u202e", "%00", "'; --", "\\", '"', "🙂" * 30]
)
STRING_FIELDS = [
    "indicator(code: {s}) {{ code }}",
    "indicators(search: {s}) {{ code }}",
    "source(slug: {s}) {{ slug }}",
    "dimension(code: {s}) {{ code }}",
    'table(indicator: "missing.cases", year: 2021, rows: {s}) {{ title }}',
    'series(indicator: "missing.cases", members: [{{dimension: "state", member: {s}}}]) {{ year }}',
]


def test_odd_strings_are_refused_or_answered_never_an_unexpected_error(db, caplog):
    client = Client()

    @HOSTILE
    @given(field=st.sampled_from(STRING_FIELDS), text=ODD_TEXT, literal=st.booleans())
    def run(field, text, literal):
        if literal:  # written in the document: JSON's escapes are GraphQL's
            body = {"query": "{ " + field.format(s=json.dumps(text)) + " }"}
        else:
            body = {"query": "query($s: String!) { " + field.format(s="$s") + " }", "variables": {"s": text}}
        answer = check_hostile(client, caplog, json.dumps(body).encode())
        if "\x00" in text or any("\ud800" <= c <= "\udfff" for c in text):
            assert "errors" in answer

    run()


def test_raw_bodies_are_a_400_or_an_answer_never_a_500(db, caplog):
    client = Client()
    nested = st.recursive(st.none() | st.integers() | st.text(max_size=3), lambda inner: st.lists(inner, max_size=2))

    @HOSTILE
    @given(
        body=st.binary(max_size=200)
        | nested.map(lambda v: json.dumps({"query": "{ dataVersion }", "variables": {"v": v}}).encode())
    )
    def run(body):
        check_hostile(client, caplog, body)

    run()
