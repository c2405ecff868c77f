"""Bad or abusive queries get clear GraphQL errors, never a 500 or a stack trace."""

import json

from django.test import override_settings


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
    errors = gql.errors("{ " + "dataVersion " * (settings.GRAPHQL_MAX_TOKENS + 10) + "}")
    assert errors == [
        f"Syntax Error: Document contains more than {settings.GRAPHQL_MAX_TOKENS} tokens. Parsing aborted."
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
