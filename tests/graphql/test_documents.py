"""Parsed and validated documents are kept by size, never by count alone."""

import json

from django.contrib.auth.models import AnonymousUser
from django.test import RequestFactory

from stats.graphql import cache, documents
from stats.graphql.documents import BoundedCache, estimated_size


def test_the_least_recently_used_entries_leave_first_when_the_bytes_are_spent():
    cache = BoundedCache(max_bytes=100)
    cache.put("a", 1, 40)
    cache.put("b", 2, 40)
    assert cache.get("a") == 1  # now b is the least recently used
    cache.put("c", 3, 40)
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (1, None, 3)
    assert cache.size == 80
    cache.put("huge", 4, 101)  # larger than the whole cache: never kept
    assert cache.get("huge") is None
    assert cache.size == 80
    cache.put("a", 5, 10)  # replaced: its old size is given back
    assert cache.size == 50


def test_a_document_over_the_size_is_answered_but_never_kept(gql, settings):
    settings.GRAPHQL_CACHED_DOCUMENT_CHARS = 1000
    small = "query KeptOnce { dataVersion }"
    large = "# " + "x" * 1000 + "\n{ dataVersion }"
    gql(small)
    kept = documents._parsed.size, documents._validated.size
    assert kept == (estimated_size(small), estimated_size(small))
    for i in range(20):  # distinct large documents: each answered, none kept anywhere
        assert "dataVersion" in gql(large + f" # {i}")
    assert (documents._parsed.size, documents._validated.size) == kept


def test_the_caches_never_hold_more_than_their_bytes(gql, monkeypatch):
    monkeypatch.setattr(documents, "_parsed", BoundedCache(max_bytes=50_000))
    monkeypatch.setattr(documents, "_validated", BoundedCache(max_bytes=50_000))
    for i in range(60):
        gql(f"query Q{i} {{ dataVersion }} # {'x' * 200}")
    assert 0 < documents._parsed.size <= 50_000
    assert 0 < documents._validated.size <= 50_000


def test_the_response_cache_key_parses_within_the_limits(db):
    """The key function never parses a document without the token limit, nor keeps an over-limit one."""
    request = RequestFactory().post(
        "/graphql", json.dumps({"query": "{ " + "dataVersion " * 100_000 + "}"}), content_type="application/json"
    )
    request.user = AnonymousUser()
    assert cache.key(request, (1, "")) is None
    assert documents._parsed.size == 0
