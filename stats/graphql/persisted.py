"""Automatic persisted queries (Apollo's protocol), so a CDN can cache a short GET URL.

A client sends ``extensions={"persistedQuery": {"version": 1, "sha256Hash": H}}`` without the
document; a server that knows H runs it, one that does not answers ``PersistedQueryNotFound`` and
the client sends the document once with its hash. Documents are kept in the response cache's two
levels (Redis: every web replica knows them), under their hash, which is checked.
"""

from __future__ import annotations

import hashlib
import json
import re

from django.http import HttpRequest, JsonResponse

from stats.graphql import cache, limits

HASH = re.compile(r"[0-9a-f]{64}")


def refusal(message: str, code: str, status: int = 200) -> JsonResponse:
    response = JsonResponse({"errors": [{"message": message, "extensions": {"code": code}}]}, status=status)
    response["Cache-Control"] = "no-store"
    return response


def params(request: HttpRequest) -> dict | None:
    if request.method == "GET":
        return request.GET
    if request.method == "POST" and request.content_type == "application/json":
        try:
            payload = json.loads(request.body)
        except ValueError:
            return None  # strawberry answers the malformed body
        return payload if isinstance(payload, dict) else None
    return None


def resolve(request: HttpRequest) -> JsonResponse | None:
    """Put the persisted document into the request (as if sent whole); a response when that cannot be done."""
    found = params(request)
    extensions = found.get("extensions") if found else None
    if isinstance(extensions, str):
        try:
            extensions = json.loads(extensions)
        except ValueError:
            return refusal("extensions is not valid JSON", "BAD_REQUEST", 400)
    persisted = extensions.get("persistedQuery") if isinstance(extensions, dict) else None
    if persisted is None:
        return None
    digest = persisted.get("sha256Hash") if isinstance(persisted, dict) else None
    if not isinstance(digest, str) or not HASH.fullmatch(digest) or persisted.get("version") != 1:
        return refusal("persistedQuery needs version 1 and a sha256Hash of 64 hex digits", "BAD_REQUEST", 400)
    document = found.get("query")
    if isinstance(document, str) and document:
        if hashlib.sha256(document.encode()).hexdigest() != digest:
            return refusal("provided sha does not match query", "BAD_REQUEST", 400)
        cache.responses.put("apq:" + digest, document.encode())
        return None
    stored = cache.responses.get("apq:" + digest)
    if stored is None:
        return refusal("PersistedQueryNotFound", "PERSISTED_QUERY_NOT_FOUND")
    if request.method == "GET":
        query = request.GET.copy()
        query["query"] = stored.decode()
        request.GET = query
    else:
        request._body = json.dumps({**found, "query": stored.decode()}).encode()
    return limits.request_refusal(request)  # the stored document, now in the request, within every limit
