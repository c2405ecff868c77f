"""The response cache: repeats are served from memory, and no write is ever followed by a stale answer."""

import json
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client, override_settings

from stats.models import DataVersion, Observation
from stats.services.observations import ObservationRow, observation_update, observations_import
from tests.test_admin import edit

QUERY = """
query Texas($year: Int!) {
  observations(filter: {indicators: ["missing.cases"], year: $year, members: [{dimension: "state", member: "TX"}]}) {
    items { id valueText effectiveValue correctedValue flag note }
  }
}"""


@pytest.fixture
def texas(db):
    """Texas, active cases, 2021 (253): a figure without flag or correction."""
    return Observation.objects.get(
        indicator__code="missing.cases", year=2021, source__slug="impact-2021", quote__startswith="Texas", value=253
    )


def read(client: Client, texas: Observation):
    response = client.post(
        "/graphql", json.dumps({"query": QUERY, "variables": {"year": 2021}}), content_type="application/json"
    )
    assert response.status_code == 200
    items = {item["id"]: item for item in response.json()["data"]["observations"]["items"]}
    return response, items[str(texas.id)]


def test_a_repeat_is_served_from_the_cache(client, texas):
    first, before = read(client, texas)
    again, after = read(client, texas)
    assert after == before
    assert (first["X-Cache"], again["X-Cache"]) == ("miss", "hit")
    assert again.content == first.content
    assert again["X-Data-Version"] == first["X-Data-Version"] == str(DataVersion.current())
    other_year = client.post(
        "/graphql", json.dumps({"query": QUERY, "variables": {"year": 2020}}), content_type="application/json"
    )
    assert other_year["X-Cache"] == "miss"  # other variables, other answer


def _graphql_correction(texas, editor):
    editor_client = Client(enforce_csrf_checks=True)
    editor_client.force_login(editor)
    editor_client.get("/graphql", HTTP_ACCEPT="text/html")  # the csrftoken cookie, as GraphiQL gets it
    mutation = """mutation($id: ID!) { correctObservation(id: $id, value: "250", reason: "recounted")
                  { ... on Observation { correctedValue } } }"""
    token = editor_client.cookies["csrftoken"].value
    response = editor_client.post(
        "/graphql", json.dumps({"query": mutation, "variables": {"id": texas.id}}),
        content_type="application/json", HTTP_X_CSRFTOKEN=token,
    )  # fmt: skip
    assert response.json()["data"]["correctObservation"] == {"correctedValue": "250"}
    return "250"


def _admin_edit(texas, editor):
    admin_client = Client()
    admin_client.force_login(editor)
    response = edit(admin_client, texas, corrected_value="251", correction_reason="recounted", reason="recounted")
    assert response.status_code == 200
    return "251"


def _service_update(texas, editor):
    observation_update(
        observation_id=texas.id, changes={"corrected_value": Decimal(252), "correction_reason": "x"}, reason="x"
    )
    return "252"


def _import(texas, editor):
    observations_import(
        rows=[
            ObservationRow(
                indicator="missing.cases", source="impact-2021", year=2021, value_text="253", quote=texas.quote,
                table=texas.table, members={"case_status": "Active", "state": "Texas"}, corrected_value=Decimal(254),
                correction_reason="recounted",
            )
        ],
        reason="recounted", allow_changes=True,
    )  # fmt: skip
    return "254"


@pytest.mark.parametrize("write", [_graphql_correction, _admin_edit, _service_update, _import])
def test_the_next_read_after_a_write_shows_it(write, texas):
    editor = User.objects.create_user("cache-editor", password="pw-for-tests-only", is_staff=True)
    editor.groups.add(Group.objects.get(name="Data editor"))
    reader = Client()
    read(reader, texas)
    assert read(reader, texas)[0]["X-Cache"] == "hit"

    expected = write(texas, editor)

    response, item = read(reader, texas)
    assert response["X-Cache"] == "miss"
    assert (item["correctedValue"], item["effectiveValue"]) == (expected, expected)


def test_answers_with_errors_and_mutations_are_not_kept(gql):
    bad = '{ table(indicator: "missing.casez", year: 2021, rows: "state") { title } }'
    assert gql.post(bad)["X-Cache"] == "miss"
    assert gql.post(bad)["X-Cache"] == "miss"
    mutation = 'mutation { flagObservation(id: "1", flag: GARBLED, note: "n") { __typename } }'
    assert "X-Cache" not in gql.post(mutation)


def test_each_role_has_its_own_answers(client, editor, texas):
    assert read(client, texas)[0]["X-Cache"] == "miss"  # the editor's session
    assert read(Client(), texas)[0]["X-Cache"] == "miss"  # anonymous: not the editor's answer
    assert read(Client(), texas)[0]["X-Cache"] == "hit"


@override_settings(GRAPHQL_CACHE_MB=0)
def test_the_cache_can_be_turned_off(client, texas):
    read(client, texas)
    assert "X-Cache" not in read(client, texas)[0]


def test_reads_over_get_are_cached_too(client, db):
    url = "/graphql?query=" + "{ dataVersion }".replace(" ", "%20")
    first = client.get(url, HTTP_ACCEPT="application/json")
    again = client.get(url, HTTP_ACCEPT="application/json")
    assert (first["X-Cache"], again["X-Cache"]) == ("miss", "hit")
    assert again.json() == first.json() == {"data": {"dataVersion": DataVersion.current()}}
