"""Whole answers to read queries, reused until the data changes.

The key is the document, the variables, the operation name, the caller's role and the data
version (``DataVersion.stamp()``). Every write bumps that version in its own transaction (a
database trigger, whatever the entry point), so an answer is reused only while the data it was
built from is still the current data: no stale read, and no invalidation code to forget.

Two levels: a small one per server process, bounded in bytes (``GRAPHQL_CACHE_MB``), least
recently used first out; and, with ``REDIS_URL`` set, Redis (or Valkey) through Django's cache
framework, shared by every process and web replica, so an answer computed by one is a hit on all.
Redis down or slow costs at most its short timeout once a second: answers then come from the
database, and a log line says so. Only successful answers (no errors) to query operations are
kept; mutations never are.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections import OrderedDict

from django.conf import settings
from django.core.cache import caches
from django.http import HttpRequest
from graphql import GraphQLSyntaxError, OperationDefinitionNode, OperationType

from stats.graphql import documents, limits

logger = logging.getLogger(__name__)
SHARED_RETRY_AFTER_S = 1.0  # after a Redis failure, the shared level is skipped this long

Entry = bytes | tuple[list[tuple[bytes, bytes]], bytes]  # a body, or (headers, body) of a whole response


def size(entry: Entry) -> int:
    if isinstance(entry, bytes):
        return len(entry)
    headers, body = entry
    return len(body) + sum(len(k) + len(v) for k, v in headers)


class ResponseCache:
    """A byte-bounded LRU map from key to response body (or whole response)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[str, Entry] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def get(self, key: str) -> Entry | None:
        with self._lock:
            body = self._entries.get(key)
            if body is not None:
                self._entries.move_to_end(key)
            return body

    def put(self, key: str, entry: Entry) -> None:
        if size(entry) > self.max_bytes:
            return
        with self._lock:
            old = self._entries.pop(key, None)
            self._size += size(entry) - (size(old) if old is not None else 0)
            self._entries[key] = entry
            while self._size > self.max_bytes:
                _, evicted = self._entries.popitem(last=False)
                self._size -= size(evicted)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._size = 0


class SharedCache:
    """The shared level: Django's cache ``responses`` (Redis); every failure is a miss, never an error."""

    def __init__(self) -> None:
        self._failed_at = 0.0
        self._down = False

    @property
    def configured(self) -> bool:
        return "responses" in settings.CACHES

    def _usable(self) -> bool:
        return self.configured and time.monotonic() - self._failed_at >= SHARED_RETRY_AFTER_S

    def _failed(self, exc: Exception) -> None:
        self._failed_at = time.monotonic()
        if not self._down:
            logger.warning("shared cache unavailable (%s); answering from the database", exc)
        self._down = True

    def _worked(self) -> None:
        if self._down:
            logger.info("shared cache reachable again")
        self._down = False

    def get(self, key: str) -> Entry | None:
        if not self._usable():
            return None
        try:
            entry = caches["responses"].get(key)
        except Exception as exc:  # redis-py's errors, whatever the failure: the database answers instead
            self._failed(exc)
            return None
        self._worked()
        return entry

    def put(self, key: str, entry: Entry) -> None:
        if not self._usable():
            return
        try:
            caches["responses"].set(key, entry)
        except Exception as exc:  # as in get
            self._failed(exc)
        else:
            self._worked()

    def ping(self) -> bool | None:
        """True when reachable, False when not, None when no shared cache is configured."""
        if not self.configured:
            return None
        try:
            caches["responses"].get("ping")
        except Exception:  # as in get
            return False
        return True


class TwoLevelCache:
    """The process's LRU in front of the shared cache: a shared hit is kept locally too."""

    def __init__(self, local: ResponseCache, shared: SharedCache) -> None:
        self.local, self.shared = local, shared

    def get(self, key: str) -> Entry | None:
        entry = self.local.get(key)
        if entry is None:
            entry = self.shared.get(key)
            if entry is not None:
                self.local.put(key, entry)
        return entry

    def put(self, key: str, entry: Entry) -> None:
        if size(entry) > self.local.max_bytes:
            return
        self.local.put(key, entry)
        self.shared.put(key, entry)

    def clear(self) -> None:
        """Empty this process's level (the shared one outlives processes; its keys carry the version)."""
        self.local.clear()


responses = TwoLevelCache(ResponseCache(settings.GRAPHQL_CACHE_MB * 1024 * 1024), SharedCache())


def is_query(document: str, operation_name: str | None) -> bool:
    """Whether the operation the request runs is a query (not a mutation or subscription).

    Parsed within the limits and cached with the other documents (stats.graphql.documents).
    """
    try:
        parsed = documents.parsed(document)
    except (GraphQLSyntaxError, limits.LimitExceeded):
        return False  # strawberry answers with the error; nothing to cache
    operations = [d for d in parsed.definitions if isinstance(d, OperationDefinitionNode)]
    chosen = [o for o in operations if operation_name is None or (o.name and o.name.value == operation_name)]
    return len(chosen) == 1 and chosen[0].operation == OperationType.QUERY


def role(request: HttpRequest) -> str:
    """Who is asking, as far as answers could differ: anonymous, or a user's permission groups."""
    user = request.user
    if not user.is_authenticated:
        return "anonymous"
    if user.is_superuser:
        return "superuser"
    return "groups:" + ",".join(sorted(user.groups.values_list("name", flat=True)))


def key(request: HttpRequest, data_version: tuple[int, str]) -> str | None:
    """The cache key of a read query's answer; None when the request is not a cacheable read."""
    if not settings.GRAPHQL_CACHE_MB:
        return None
    if request.method == "GET":
        params = request.GET
        document, variables, operation_name = params.get("query"), params.get("variables"), params.get("operationName")
    elif request.method == "POST" and request.content_type == "application/json":
        try:
            payload = limits.decode_json(request.body, "request body")
        except limits.LimitExceeded:
            return None
        if not isinstance(payload, dict):
            return None  # batches and junk: strawberry answers them uncached
        document, variables, operation_name = (payload.get(k) for k in ("query", "variables", "operationName"))
    else:
        return None
    if not isinstance(document, str) or not (operation_name is None or isinstance(operation_name, str)):
        return None
    try:
        limits.check_input(variables, "variables")  # the view refuses these first; the key never trusts them
    except limits.LimitExceeded:
        return None
    if not is_query(document, operation_name):
        return None
    return key_of(data_version, role(request), document, variables, operation_name)


def key_of(data_version: tuple[int, str], who: str, document: str, variables, operation_name: str | None) -> str:
    """The key of a checked read query (``key``'s last step; stats.graphql.planned keys its answers the same way)."""
    material = json.dumps([data_version, who, document, variables, operation_name], sort_keys=True)
    return hashlib.sha256(material.encode()).hexdigest()
