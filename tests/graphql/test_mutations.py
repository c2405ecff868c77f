"""Only staff with the permission change data; cookie sessions need CSRF; scripts read anonymously."""

import json

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client

from stats.models import Observation

CORRECT = """
mutation($id: ID!, $version: Int) {
  correctObservation(id: $id, value: "3", reason: "derived from the row total", expectedVersion: $version) {
    ... on Observation { correctedValue version }
    ... on OperationInfo { messages { kind field message } }
  }
}"""
FLAG = """
mutation($id: ID!) {
  flagObservation(id: $id, flag: GARBLED, note: "the cell is smudged") {
    ... on Observation { flag note }
    ... on OperationInfo { messages { kind message } }
  }
}"""


@pytest.fixture
def obs(db):
    """Texas, active cases, 2021 (253): a figure without flag or correction."""
    return Observation.objects.get(
        indicator__code="missing.cases", year=2021, source__slug="impact-2021", quote__startswith="Texas", value=253
    )


def logged_in(*permissions: str) -> Client:
    user = User.objects.create_user(f"user{len(permissions)}", password="pw-for-tests-only")
    for codename in permissions:
        user.user_permissions.add(Permission.objects.get(codename=codename))
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    client.get("/graphql", HTTP_ACCEPT="text/html")
    return client


def post(client: Client, query: str, variables: dict, csrf: bool = True):
    extra = {"HTTP_X_CSRFTOKEN": client.cookies["csrftoken"].value} if csrf and "csrftoken" in client.cookies else {}
    return client.post(
        "/graphql", json.dumps({"query": query, "variables": variables}), content_type="application/json", **extra
    )


def test_anonymous_users_cannot_change_data(obs, client):
    response = post(client, CORRECT, {"id": obs.id})
    messages = response.json()["data"]["correctObservation"]["messages"]
    assert messages[0]["kind"] == "PERMISSION"
    assert messages[0]["message"] == "log in as a data editor to change data (anonymous requests are read-only)"
    obs.refresh_from_db()
    assert obs.version == 1


def test_a_viewer_without_the_permission_cannot_change_data(obs):
    client = logged_in("view_observation")
    for query in (CORRECT, FLAG):
        data = post(client, query, {"id": obs.id}).json()["data"]
        assert next(iter(data.values()))["messages"][0]["kind"] == "PERMISSION"
    obs.refresh_from_db()
    assert (obs.version, obs.flag) == (1, "")


def test_an_editor_corrects_and_flags_and_both_are_audited(obs):
    client = logged_in("change_observation")
    assert post(client, CORRECT, {"id": obs.id, "version": 1}).json()["data"]["correctObservation"] == {
        "correctedValue": "3",
        "version": 2,
    }
    assert post(client, FLAG, {"id": obs.id}).json()["data"]["flagObservation"]["flag"] == "GARBLED"
    query = "{ observations(filter: {flag: GARBLED, allSources: true}) { items { id history { label reason } } } }"
    history = post(client, query, {}).json()["data"]
    events = next(i for i in history["observations"]["items"] if i["id"] == str(obs.id))["history"]
    assert [(e["label"], e["reason"]) for e in events][-2:] == [
        ("update", "derived from the row total"),
        ("update", "the cell is smudged"),
    ]


def test_a_stale_version_is_refused_as_data_not_an_exception(obs):
    client = logged_in("change_observation")
    post(client, CORRECT, {"id": obs.id, "version": 1})
    messages = post(client, CORRECT, {"id": obs.id, "version": 1}).json()["data"]["correctObservation"]["messages"]
    assert messages[0]["field"] == "expectedVersion"
    assert "changed by someone else" in messages[0]["message"]


def test_flagging_a_figure_with_no_value_as_anything_but_missing_is_refused(db):
    north_dakota = Observation.objects.get(quote__startswith="North Dakota", year=2021, value__isnull=True)
    client = logged_in("change_observation")
    messages = post(client, FLAG, {"id": north_dakota.id}).json()["data"]["flagObservation"]["messages"]
    assert messages == [
        {"kind": "VALIDATION", "message": "no figure: set flag missing_value when the document prints none"}
    ]


def test_invalid_input_comes_back_as_field_errors(obs):
    client = logged_in("change_observation")
    query = CORRECT.replace('value: "3"', 'value: "-3"')
    messages = post(client, query, {"id": obs.id}).json()["data"]["correctObservation"]["messages"]
    assert messages[0]["kind"] == "VALIDATION"
    assert messages[0]["field"] == "corrected_value"
    assert "counts cannot be negative" in messages[0]["message"]


def test_a_cookie_session_post_without_csrf_token_is_refused(obs):
    client = logged_in("change_observation")
    response = post(client, CORRECT, {"id": obs.id}, csrf=False)
    assert response.status_code == 403
    obs.refresh_from_db()
    assert obs.version == 1


def test_a_cookieless_script_reads_without_a_token(db):
    client = Client(enforce_csrf_checks=True)
    response = post(client, "{ dataVersion sources { slug } }", {}, csrf=False)
    assert response.status_code == 200
    assert len(response.json()["data"]["sources"]) == 5


def test_queries_work_over_get(db, client):
    response = client.get("/graphql", {"query": '{ indicator(code: "calls.received") { name unit } }'})
    assert response.json()["data"]["indicator"]["unit"] == "COUNT"


def test_mutations_are_refused_over_get(obs, client):
    response = client.get("/graphql", {"query": CORRECT, "variables": json.dumps({"id": obs.id})})
    assert response.status_code == 400
