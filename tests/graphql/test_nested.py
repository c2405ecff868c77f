"""Nested lists: pages like the root list's, bounded, batched across parents, and history without
identities for anonymous callers (the query counts are in test_query_counts.py)."""

import pghistory
import pytest
from django.contrib.auth.models import User

from stats.graphql import types
from stats.models import Observation

PAGE = "totalCount hasNextPage offset limit items { id }"


def ids(page: dict) -> list[str]:
    return [o["id"] for o in page["items"]]


def test_a_sources_pages_slice_its_whole_list(gql):
    query = f"""query Pages($offset: Int!) {{ source(slug: "impact-2020") {{
        all: observationPage(limit: 10000) {{ {PAGE} }}
        first: observationPage(limit: 5) {{ {PAGE} }}
        second: observationPage(limit: 5, offset: 5) {{ {PAGE} }}
        last: observationPage(limit: 5, offset: $offset) {{ {PAGE} }} }} }}"""
    total = gql(query, {"offset": 0})["source"]["all"]["totalCount"]
    source = gql(query, {"offset": total - 2})["source"]
    every = ids(source["all"])
    assert len(every) == total > 10
    assert ids(source["first"]) + ids(source["second"]) == every[:10]
    assert (source["second"]["offset"], source["second"]["limit"], source["second"]["hasNextPage"]) == (5, 5, True)
    assert source["all"]["hasNextPage"] is False
    last = source["last"]
    assert (ids(last), last["hasNextPage"], last["totalCount"]) == (every[-2:], False, total)


def test_a_deprecated_list_stops_at_its_cap_in_page_order(gql, monkeypatch):
    monkeypatch.setattr(types, "LIST_CAP", 3)
    source = gql('{ source(slug: "impact-2020") { observations { id } observationPage(limit: 4) { items { id } } } }')[
        "source"
    ]
    assert [o["id"] for o in source["observations"]] == ids(source["observationPage"])[:3]


def test_the_members_of_one_figure_each_get_their_own_page(gql):
    """Two members of one observation are fetched in one batch; each page is that member's figures."""
    query = (
        '{ observations(filter: {indicators: ["missing.cases"], breakdown: ["case_status", "state"]}, limit: 1) '
        "{ items { members { code dimension { code } observationPage(limit: 10000) { totalCount items { id } } } } } }"
    )
    (observation,) = gql(query)["observations"]["items"]
    assert len(observation["members"]) == 2
    root = """query Root($refs: [MemberRef!]) {
        observations(filter: {members: $refs}, limit: 10000) { totalCount items { id } } }"""
    for member in observation["members"]:
        ref = {"dimension": member["dimension"]["code"], "member": member["code"]}
        expected = gql(root, {"refs": [ref]})["observations"]
        page = member["observationPage"]
        assert page["totalCount"] == expected["totalCount"] == len(page["items"]) > 0
        assert sorted(ids(page)) == sorted(ids(expected))


@pytest.mark.parametrize("all_sources", [True, False])
def test_an_indicators_pages_and_years_match_the_root_filter(gql, all_sources):
    query = """query I($all: Boolean!) { indicators(topic: "missing_children") {
        code years observationPage(limit: 10000, allSources: $all) { totalCount } } }"""
    root = """query R($codes: [String!], $all: Boolean!) {
        observations(filter: {indicators: $codes, allSources: $all}, limit: 10000) { totalCount items { year } } }"""
    indicators = gql(query, {"all": all_sources})["indicators"][:5]
    assert indicators  # an unknown topic is an error now; this one has indicators
    for indicator in indicators:
        expected = gql(root, {"codes": [indicator["code"]], "all": all_sources})["observations"]
        assert indicator["observationPage"]["totalCount"] == expected["totalCount"]
        if all_sources:
            assert indicator["years"] == sorted({o["year"] for o in expected["items"]})


def test_nested_page_arguments_are_bounded(gql, settings):
    too_big = settings.GRAPHQL_MAX_PAGE_SIZE + 1
    source = '{ source(slug: "impact-2020") { observationPage(%s) { totalCount } } }'
    assert "over the maximum page size" in gql.errors(source % f"limit: {too_big}")[0]
    assert gql.errors(source % "offset: -1") == ["offset cannot be negative"]
    history = "{ observations(limit: 1) { items { history(limit: 0) { id } } } }"
    assert gql.errors(history) == ["limit must be at least 1"]


def test_history_shows_who_and_why_only_to_staff(gql, build, client, editor):
    client.logout()  # the editor fixture logged in: first ask as anyone would
    obs = build.observation(build.indicator(), build.source())
    with pghistory.context(user=editor.id, reason="recounted from the printed table"):
        Observation.objects.filter(id=obs.id).update(note="recounted")
    query = "query H($s: String) { observations(filter: {source: $s}) { items { history { label userId reason } } } }"
    (anonymous,) = gql(query, {"s": obs.source.slug})["observations"]["items"]
    assert [e["label"] for e in anonymous["history"]] == ["insert", "update"]
    assert {(e["userId"], e["reason"]) for e in anonymous["history"]} == {(None, None)}
    nobody = User.objects.create_user("no-role", password="pw-for-tests-only")  # logged in, no permission
    client.force_login(nobody)
    (no_role,) = gql(query, {"s": obs.source.slug})["observations"]["items"]
    assert no_role["history"] == anonymous["history"]
    client.force_login(editor)
    (staff,) = gql(query, {"s": obs.source.slug})["observations"]["items"]
    assert staff["history"][1] == {"label": "update", "userId": editor.id, "reason": "recounted from the printed table"}


def test_history_pages(gql, build):
    obs = build.observation(build.indicator(), build.source())
    for n in range(3):
        Observation.objects.filter(id=obs.id).update(note=f"change {n}")
    query = """query H($s: String) { observations(filter: {source: $s}) {
        items { all: history { id } page: history(limit: 2, offset: 1) { id } } } }"""
    (item,) = gql(query, {"s": obs.source.slug})["observations"]["items"]
    assert len(item["all"]) == 4
    assert item["page"] == item["all"][1:3]
