"""Bad or abusive queries get clear GraphQL errors, never a 500 or a stack trace."""

import json

import pytest
from django.test import override_settings

from stats.graphql import documents


def test_unknown_indicator_names_it_and_close_matches(gql):
    assert gql.errors('{ indicator(code: "missing.case") { name } }') == [
        "unknown indicator 'missing.case' "
        '(did you mean "missing.cases" or "missing.cases_share" or "missing.from_care_cases"?)'
    ]


def test_unknown_member_in_a_filter(gql):
    errors = gql.errors('{ observations(filter: {members: [{dimension: "state", member: "Nevadda"}]}) { totalCount } }')
    assert errors == ['unknown member "Nevadda" of dimension state (did you mean "Nevada"?)']


def test_page_size_is_capped(gql, settings):
    errors = gql.errors(f"{{ observations(limit: {settings.GRAPHQL_MAX_PAGE_SIZE + 1}) {{ totalCount }} }}")
    assert "over the maximum page size" in errors[0]


def test_deep_queries_are_refused(gql, settings):
    depth = settings.GRAPHQL_MAX_DEPTH
    deep = "{ topics { " + "indicators { topic { " * depth + "name" + " } }" * depth + " } }"
    assert "exceeds maximum operation depth" in gql.errors(deep)[0]


def test_alias_floods_are_refused(gql):
    flood = "{ " + " ".join(f"a{i}: dataVersion" for i in range(50)) + " }"
    assert "aliases found" in gql.errors(flood)[0]


def test_token_floods_are_refused(gql, settings):
    response = gql.post("{ " + "dataVersion " * (settings.GRAPHQL_MAX_TOKENS + 10) + "}")
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"message": "The document has more than 2000 tokens; at most 2000 are allowed."}
    ]


def test_aggregate_refuses_shares(gql):
    errors = gql.errors('{ aggregate(indicator: "missing.cases_share", over: "case_type") { sum } }')
    assert errors == ["missing.cases_share is measured in percent: shares and ratios cannot be added up"]


def test_aggregate_refuses_running_totals_and_approximate_figures(gql, build):
    indicator = build.indicator("test.agg")
    dim = build.dimension("test_agg_dim", members=["One", "Two"])
    one, two = dim.members.order_by("order")
    source = build.source("test-agg", edition=2022)
    build.observation(indicator, source, 2022, "10", members=[one])
    build.observation(indicator, source, 2022, "20", members=[two], qualifier="more_than", value_text="20")
    query = '{ aggregate(indicator: "test.agg", over: "test_agg_dim") { sum } }'
    assert gql.errors(query) == [
        'test.agg mixes approximate figures with exact ones (e.g. "more than" 20 in 2022): '
        "their sum would be meaningless"
    ]
    build.observation(indicator, source, 2022, "500", members=[one], period="cumulative")
    assert gql.errors(query) == ["test.agg has cumulative figures: running totals cannot be added up"]


@override_settings(DEBUG=False)
def test_garbage_is_a_graphql_error_not_a_500(gql):
    response = gql.post("{ this is not graphql")
    assert response.status_code in (200, 400)
    assert response.json()["errors"][0]["message"] == "Syntax Error: Expected Name, found <EOF>."


def test_an_unexpected_exception_is_masked_for_the_client_and_logged_for_us(gql, monkeypatch, caplog):
    def broken(info):
        raise RuntimeError("connection to 10.0.0.5 refused (password=hunter2)")

    monkeypatch.setattr("stats.graphql.queries.data_version", broken)
    response = gql.post("{ dataVersion }")
    assert response.status_code == 200
    assert response.json()["errors"][0]["message"] == "Unexpected error."
    assert b"hunter2" not in response.content
    logged = [r for r in caplog.records if r.levelname == "ERROR"]
    assert len(logged) == 1
    assert "hunter2" in logged[0].getMessage() or "hunter2" in str(logged[0].exc_info)


def test_a_bad_query_is_not_logged_as_a_server_error(gql, caplog):
    gql.errors('{ indicator(code: "nope") { name } }')
    assert [r for r in caplog.records if r.levelname == "ERROR"] == []


def test_fragments_do_not_bypass_the_depth_limit(gql, settings):
    """The depth limiter follows fragment spreads (the bypass fixed in strawberry 0.315.7)."""
    depth = settings.GRAPHQL_MAX_DEPTH
    fragments = (
        "".join(f"fragment F{i} on Indicator {{ topic {{ indicators {{ ...F{i + 1} }} }} }} " for i in range(depth))
        + f"fragment F{depth} on Indicator {{ code }}"
    )
    errors = gql.errors("{ topics { indicators { ...F0 } } } " + fragments)
    assert "exceeds maximum operation depth" in errors[0]


def test_fragments_do_not_bypass_the_alias_limit(gql):
    aliases = " ".join(f"a{i}: code" for i in range(20))
    query = "{ indicators { ...A ...B } } fragment A on Indicator { " + aliases + " } "
    query += "fragment B on Indicator { " + aliases.replace("a", "b") + " }"
    assert "aliases found" in gql.errors(query)[0]


def test_fragment_cycles_are_refused(gql):
    query = "{ topics { ...A } } fragment A on Topic { indicators { topic { ...B } } } fragment B on Topic { ...A }"
    response = gql.post(query)
    assert response.status_code in (200, 400)
    assert any("Cannot spread fragment" in e["message"] for e in response.json()["errors"])


def test_batched_operations_are_refused(gql):
    response = gql.client.post(
        "/graphql", json.dumps([{"query": "{ dataVersion }"}] * 100), content_type="application/json"
    )
    assert response.status_code == 400
    assert "Batching is not enabled" in response.content.decode()


def test_no_field_suggestions_leak_the_schema_when_debug_is_off(gql):
    from django.conf import settings

    assert settings.DEBUG is False
    errors = gql.errors('{ indicatr(code: "x") { name } }')
    assert errors == ["Cannot query field 'indicatr' on type 'Query'."]


# -- limits measured on the whole request (stats/graphql/limits.py) --------------------------------
def refusal(response) -> str:
    """The message of a 400 refusal."""
    assert response.status_code == 400, response.content[:300]
    (error,) = response.json()["errors"]
    return error["message"]


def post_raw(gql, body: bytes, **extra):
    return gql.client.post("/graphql", body, content_type="application/json", **extra)


def fan_out(n: int) -> str:
    """Each fragment spreads the next twice: 2**n fields once expanded, in ~40 bytes a level."""
    fragments = " ".join(f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }}" for i in range(n))
    return f"{{ ...F0 }} {fragments} fragment F{n} on Query {{ dataVersion }}"


def test_fragment_fan_out_is_measured_once_per_fragment_and_refused(gql):
    assert refusal(gql.post(fan_out(20))) == (
        "The document selects 1048576 fields once its fragments are expanded; at most 1000 are allowed."
    )
    assert refusal(gql.post(fan_out(150))) == (
        f"The document selects {2**150} fields once its fragments are expanded; at most 1000 are allowed."
    )


def test_the_field_budget_counts_expanded_fields_exactly(gql, settings):
    settings.GRAPHQL_MAX_FIELDS = 8  # F3 spread 8 times: 8 fields of dataVersion
    assert gql(fan_out(3)) == {"dataVersion": gql("{ dataVersion }")["dataVersion"]}
    assert "selects 16 fields" in refusal(gql.post(fan_out(4)))


def test_a_fragment_spread_twice_counts_its_aliases_twice(gql):
    aliases = " ".join(f"a{i}: code" for i in range(20))
    query = "{ indicators { ...A ...A } } fragment A on Indicator { " + aliases + " }"
    assert refusal(gql.post(query)) == "40 aliases found. Allowed: 30"


def test_depth_counts_through_fragments_at_the_depth_they_are_spread(gql, settings):
    settings.GRAPHQL_MAX_DEPTH = 3
    fragment = " fragment T on Topic { indicators { code } }"
    assert gql("{ topics { ...T } }" + fragment)["topics"]  # topics > indicators > code: depth 2
    deeper = "{ topics { indicators { topic { indicators { topic { ...T } } } } } }" + fragment
    assert refusal(gql.post(deeper)) == "'anonymous' exceeds maximum operation depth of 3"


def test_a_fragment_cycle_with_fan_out_is_refused_at_once(gql):
    query = fan_out(20).replace("fragment F20 on Query { dataVersion }", "fragment F20 on Query { ...F0 }")
    assert refusal(gql.post(query)).startswith("Cannot spread fragment 'F0' within itself (via F0, F1, F2,")


def test_directives_per_field_are_capped(gql, settings):
    five = "@include(if: true) " * settings.GRAPHQL_MAX_DIRECTIVES
    errors = gql.errors("{ dataVersion " + five + "}")  # allowed here; graphql-core refuses repeats
    assert errors == ["The directive '@include' can only be used once at this location."] * 4
    assert refusal(gql.post("{ dataVersion " + five + "@skip(if: false) }")) == (
        "6 directives on field dataVersion; at most 5 are allowed."
    )


AGGREGATE = 'aggregate(indicator: "missing.cases", over: "case_type", years: %s) { year }'


def test_every_list_argument_is_capped_in_the_document_and_in_variables(gql, settings):
    settings.GRAPHQL_MAX_LIST_ITEMS = 3
    assert "aggregate" in gql("{ " + AGGREGATE % "[2019, 2020, 2021]" + " }")
    assert refusal(gql.post("{ " + AGGREGATE % "[2019, 2020, 2021, 2022]" + " }")) == (
        "argument years of field aggregate: 4 items; at most 3 are allowed."
    )
    query = "query($years: [Int!]) { " + AGGREGATE % "$years" + " }"
    assert refusal(gql.post(query, {"years": [2019, 2020, 2021, 2022]})) == (
        "variables.years: 4 items; at most 3 are allowed."
    )
    nested_list = "query($f: ObservationFilter) { observations(filter: $f) { totalCount } }"
    assert refusal(gql.post(nested_list, {"f": {"breakdown": ["state"] * 4}})) == (
        "variables.f.breakdown: 4 items; at most 3 are allowed."
    )


def test_input_nesting_is_capped(gql, settings):
    settings.GRAPHQL_MAX_INPUT_DEPTH = 3
    query = "query($f: ObservationFilter) { observations(filter: $f) { totalCount } }"
    ok = {"f": {"members": [{"dimension": "state", "member": "Nevada"}]}}  # variables > f > members > member
    assert gql(query, ok)["observations"]["totalCount"] >= 0
    assert refusal(gql.post(query, {"f": {"members": [[{"dimension": "state"}]]}})) == (
        "variables.f.members[0][0]: input nested more than 3 levels deep."
    )
    literal = '{ observations(filter: {members: [{dimension: "state", member: "Nevada"}]}) { totalCount } }'
    assert gql(literal)["observations"]["totalCount"] >= 0
    settings.GRAPHQL_MAX_INPUT_DEPTH = 2
    documents.clear()  # the document was checked (and kept) under the other limit
    assert refusal(gql.post(literal)) == "argument filter of field observations: input nested more than 2 levels deep."


@pytest.mark.parametrize(
    ("text", "where"),
    [("a\u0000b", "variables.s"), ("a\ud800b", "variables.s")],
    ids=["nul", "lone-surrogate"],
)
def test_strings_postgresql_cannot_hold_are_refused_and_not_logged_as_errors(gql, caplog, text, where):
    response = gql.post("query($s: String) { indicators(search: $s) { code } }", {"s": text})
    assert refusal(response) == f"{where}: a string may not contain NUL (U+0000) or unpaired surrogate characters."
    literal = gql.post('{ indicators(search: "a\\u0000b") { code } }')
    assert refusal(literal).startswith("argument search of field indicators: a string may not contain NUL")
    assert [r for r in caplog.records if r.levelname == "ERROR"] == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'"hello"', 'The request body must be a JSON object with a "query" string, not a string.'),
        (b"12", 'The request body must be a JSON object with a "query" string, not a number.'),
        (b"null", 'The request body must be a JSON object with a "query" string, not null.'),
        (b"true", 'The request body must be a JSON object with a "query" string, not a boolean.'),
        (b"[]", "Batching is not enabled: send one operation, as a JSON object."),
        (b'{"query": "{ dataVersion }\xff"}', "The request body is not valid UTF-8 (at byte offset 26)."),
        (b'{"query": ', "The request body is not valid JSON: Expecting value (line 1, column 11)."),
        (
            b'{"query": "{ dataVersion }", "variables": ' + b"[" * 5000 + b"]" * 5000 + b"}",
            "The request body nests too deeply.",
        ),
        (b'{"query": "{ dataVersion }", "variables": "{}"}', '"variables" must be an object or null, not a string.'),
        (
            b'{"query": "{ dataVersion }", "operationName": 5}',
            '"operationName" must be a string or null, not a number.',
        ),
        (b'{"query": ["{ dataVersion }"]}', '"query" must be a string or null, not a list.'),
        (b'{"query": "{ dataVersion }", "extensions": [1]}', '"extensions" must be an object or null, not a list.'),
    ],
    ids=[
        "string",
        "number",
        "null",
        "boolean",
        "batch",
        "utf-8",
        "json",
        "deep",
        "variables",
        "operation",
        "query",
        "ext",
    ],
)
def test_malformed_bodies_are_a_400_naming_the_problem_never_a_500(gql, caplog, body, message):
    assert refusal(post_raw(gql, body)) == message
    assert [r for r in caplog.records if r.levelname == "ERROR"] == []


def test_oversized_bodies_and_query_strings_are_refused_before_parsing(gql, settings):
    settings.GRAPHQL_MAX_BODY_BYTES = 1000
    body = json.dumps({"query": "{ dataVersion }" + " " * 1000}).encode()
    assert refusal(post_raw(gql, body)) == f"The request is {len(body)} bytes; at most 1000 are accepted."
    response = gql.client.get("/graphql", {"query": "{ dataVersion }" + " " * 1000}, HTTP_ACCEPT="application/json")
    assert refusal(response).startswith("The request is ")


def test_get_requests_are_checked_like_posts(gql):
    get = lambda **params: gql.client.get("/graphql", params, HTTP_ACCEPT="application/json")  # noqa: E731
    assert refusal(get(query=fan_out(20))).startswith("The document selects 1048576 fields")
    assert refusal(get(query="{ dataVersion }", variables="[[")) == (
        "The variables parameter is not valid JSON: Expecting value (line 1, column 3)."
    )
    assert get(query="{ dataVersion }").status_code == 200


def test_a_syntax_error_is_still_answered_by_strawberry_with_its_location(gql):
    response = gql.post("{ dataVersion ")
    assert response.status_code == 200
    assert response.json()["errors"] == [
        {"message": "Syntax Error: Expected Name, found <EOF>.", "locations": [{"line": 1, "column": 15}]}
    ]


@pytest.mark.parametrize(
    ("query", "variables"),
    [
        ('{ indicator(cod: "x") { name } }', None),
        ("{ observations(order: [YEA]) { totalCount } }", None),
        ("query($o: [ObservationOrder!]) { observations(order: $o) { totalCount } }", {"o": ["YEA"]}),
        ("query($f: ObservationFiltr) { observations(filter: $f) { totalCount } }", None),
        ('{ observations(filter: {indicatr: ["x"]}) { totalCount } }', None),
        ("query($f: ObservationFilter) { observations(filter: $f) { totalCount } }", {"f": {"indicatr": ["x"]}}),
        ("{ indicators { cod } }", None),
    ],
    ids=["argument", "enum", "enum-variable", "type", "input-field", "input-field-variable", "field"],
)
def test_no_suggestion_of_any_kind_when_debug_is_off(gql, query, variables):
    response = gql.post(query, variables)
    assert response.status_code in (200, 400)
    errors = response.json()["errors"]
    assert errors
    assert not any("did you mean" in e["message"].lower() for e in errors), errors


def test_errors_quote_at_most_100_characters_of_the_input(gql):
    long = "y" * 5000
    assert gql.errors(f'{{ indicator(code: "{long}") {{ name }} }}') == ["unknown indicator '" + "y" * 100 + "…'"]
    (literal,) = gql.errors(f'{{ coverage(year: "{long}") {{ year }} }}')
    assert literal == 'Int cannot represent non-integer value: "' + "y" * 100 + '…"'
    (variable,) = gql.errors("query($y: Int) { coverage(year: $y) { year } }", {"y": long})
    assert "y" * 101 not in variable
    assert len(variable) < 400


def test_every_entry_enforces_the_limits_not_only_the_view(db):
    """strawberry's own parse (schema.execute_sync) and the response cache's key use the same checks."""
    from stats.graphql import cache
    from stats.graphql.schema import schema

    result = schema.execute_sync(fan_out(20))
    assert [e.message for e in result.errors] == [
        "The document selects 1048576 fields once its fragments are expanded; at most 1000 are allowed."
    ]
    result = schema.execute_sync("query($y: [Int!]) { " + AGGREGATE % "$y" + " }", {"y": [2020] * 1001})
    assert [e.message for e in result.errors] == ["variables.y: 1001 items; at most 1000 are allowed."]
    assert cache.is_query("{ " + "dataVersion " * 3000 + "}", None) is False
    assert cache.is_query(fan_out(20), None) is False


def test_a_document_answered_before_is_refused_with_variables_over_the_limits(gql):
    from stats.graphql.schema import schema

    query = "query($y: [Int!]) { " + AGGREGATE % "$y" + " }"
    assert gql(query, {"y": [2020]})["aggregate"]  # parsed, validated and kept
    result = schema.execute_sync(query, {"y": [2020] * 1001})
    assert [e.message for e in result.errors] == ["variables.y: 1001 items; at most 1000 are allowed."]
