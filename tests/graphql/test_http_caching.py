"""HTTP caching for browsers and CDNs (stats.graphql.http_caching) and persisted queries
(stats.graphql.persisted), through Django's test client."""

import hashlib
import json

import pytest
from django.test import Client

from stats.models import DataVersion

QUERY = '{ indicators(topic: "cybertipline") { code } }'
HASH = hashlib.sha256(QUERY.encode()).hexdigest()


def persisted(client: Client, query: str | None = None, digest: str = HASH, **headers):
    params = {"extensions": json.dumps({"persistedQuery": {"version": 1, "sha256Hash": digest}})}
    if query is not None:
        params["query"] = query
    return client.get("/graphql", params, HTTP_ACCEPT="application/json", **headers)


def test_a_get_answers_304_to_its_etag_and_changes_with_the_data(db, client, build):
    first = client.get("/graphql", {"query": QUERY}, HTTP_ACCEPT="application/json")
    tag = first["ETag"]
    assert tag.startswith(f'"{DataVersion.current()}-')
    assert first["Cache-Control"] == "public, max-age=5, stale-while-revalidate=30"
    assert first["Vary"] == "Accept, Cookie, origin"  # origin: the CORS headers answer the caller's Origin
    again = client.get("/graphql", {"query": QUERY}, HTTP_ACCEPT="application/json", HTTP_IF_NONE_MATCH=tag)
    assert (again.status_code, again.content, again["ETag"]) == (304, b"", tag)
    build.topic("scale-out")  # any write
    changed = client.get("/graphql", {"query": QUERY}, HTTP_ACCEPT="application/json", HTTP_IF_NONE_MATCH=tag)
    assert changed.status_code == 200
    assert changed["ETag"] != tag


def test_errors_mutations_and_posts_are_not_public(db, client):
    error = client.get("/graphql", {"query": '{ indicator(code: "nope") { code } }'}, HTTP_ACCEPT="application/json")
    assert (error["Cache-Control"], error.has_header("ETag")) == ("no-store", False)
    post = client.post("/graphql", json.dumps({"query": QUERY}), content_type="application/json")
    assert post["Cache-Control"] == "no-cache"


def test_a_logged_in_answer_is_private(editor, client):
    response = client.get("/graphql", {"query": QUERY}, HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    assert (response["Cache-Control"], response.has_header("ETag")) == ("private, no-store", False)


def test_a_persisted_query_is_registered_once_then_sent_by_hash(db, client):
    unknown = persisted(client)
    assert unknown.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
    assert unknown["Cache-Control"] == "no-store"
    registered = persisted(client, QUERY)
    by_hash = persisted(client)
    assert registered.status_code == by_hash.status_code == 200
    assert by_hash.json() == registered.json()
    assert {"code": "cybertipline.reports"} in by_hash.json()["data"]["indicators"]
    assert by_hash["Cache-Control"].startswith("public")
    assert persisted(client, HTTP_IF_NONE_MATCH=by_hash["ETag"]).status_code == 304


@pytest.mark.parametrize(
    ("query", "digest", "message"),
    [
        (QUERY + " ", HASH, "provided sha does not match query"),
        (None, "not-a-hash", "persistedQuery needs version 1 and a sha256Hash of 64 hex digits"),
        # Bounded as every document is, before it could be stored (stats.graphql.limits)
        ("{ dataVersion }" + " " * 100_000, hashlib.sha256(b"x").hexdigest(), "characters long; at most 32768"),
    ],
)
def test_a_bad_persisted_query_is_refused_with_the_reason(db, client, query, digest, message):
    response = persisted(client, query, digest)
    assert response.status_code == 400
    assert message in response.json()["errors"][0]["message"]


def test_a_document_sent_by_hash_is_held_to_every_limit(db, client, settings):
    big = "{ observations(limit: 300) { items { id } } }"
    digest = hashlib.sha256(big.encode()).hexdigest()
    assert persisted(client, big, digest).status_code == 200
    settings.GRAPHQL_MAX_ITEMS = 100  # the stored document is now over the budget
    by_hash = persisted(client, digest=digest)
    assert by_hash.status_code == 400
    assert "up to 300 list items; at most 100 are allowed" in by_hash.json()["errors"][0]["message"]
