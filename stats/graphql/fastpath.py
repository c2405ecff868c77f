"""Repeated anonymous reads answered in front of Django, from the response cache.

An ASGI layer around Django's handler. For an anonymous request to /graphql (no session cookie)
it reads the data version with one query on its own async connection and looks the request up:
a hit is sent back as stored (status, every header Django's middleware set, body) without
entering Django, its middleware or a worker thread. A miss goes to Django as usual, with the
stamp in the scope so the view reads it only once; when the view says the answer is reusable
(a query, no errors) and it sets no cookie, the whole response is kept for the next time.

The key is everything about the request that could change the answer: method, query string,
body, the Host, Accept, Content-Type and Origin headers, the proxy's forwarded host and scheme, and the
data version. The same request bytes at the same data version get the same bytes back; every
write bumps the version in its own transaction, so an answer is never reused after a change.
Requests with a session cookie (staff) go to Django, whose view caches per role.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from typing import Any

import psycopg
from django.conf import settings
from psycopg.conninfo import make_conninfo

from stats.graphql import cache
from stats.models.observations import DATA_VERSION_SQL

logger = logging.getLogger(__name__)

PATH = "/graphql"
# Request headers that can change the answer (Django's host check, GraphiQL or JSON, proxy facts,
# the CORS headers answered to the caller's Origin).
KEYED_HEADERS = (b"host", b"accept", b"content-type", b"origin", b"x-forwarded-host", b"x-forwarded-proto")
RETRY_AFTER_FAILURE_S = 1.0  # after a failed read, requests go straight to Django (which answers 503)


class DataVersionReader:
    """The data version stamp over one async connection per server process, reconnecting after a failure."""

    def __init__(self) -> None:
        self._connection: psycopg.AsyncConnection | None = None
        self._lock: asyncio.Lock | None = None
        self._failed_at = 0.0

    def conninfo(self) -> str:
        db = settings.DATABASES["default"]
        return make_conninfo(
            dbname=db["NAME"],
            user=db.get("USER") or None,
            password=db.get("PASSWORD") or None,
            host=db.get("HOST") or None,
            port=str(db["PORT"]) if db.get("PORT") else None,
            connect_timeout=db.get("OPTIONS", {}).get("connect_timeout", 5),
            application_name="ncmec-response-cache",
        )

    async def stamp(self) -> tuple[int, str] | None:
        """(counter, timestamp) as ``DataVersion.stamp()`` reads it; None when the database cannot be read."""
        if time.monotonic() - self._failed_at < RETRY_AFTER_FAILURE_S:
            return None
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            try:
                if self._connection is None or self._connection.closed:
                    self._connection = await psycopg.AsyncConnection.connect(self.conninfo(), autocommit=True)
                    await self._connection.execute("SET TIME ZONE 'UTC'")  # the same text as Django's
                cursor = await self._connection.execute(DATA_VERSION_SQL)
                row = await cursor.fetchone()
            except psycopg.Error as exc:
                logger.warning("response cache: cannot read the data version (%s); requests go to Django", exc)
                self._failed_at = time.monotonic()
                if self._connection is not None:
                    await self._connection.close()
                self._connection = None
                return None
        return (row[0], row[1].isoformat()) if row else (0, "")


def request_key(scope: dict, body: bytes, stamp: tuple[int, str]) -> str:
    headers = dict(scope["headers"])
    parts = [
        repr(stamp).encode(),
        scope["method"].encode(),
        scope.get("scheme", "http").encode(),
        scope.get("query_string", b""),
        *(headers.get(name, b"") for name in KEYED_HEADERS),
        body,
    ]
    digest = hashlib.sha256()
    for part in parts:
        digest.update(len(part).to_bytes(8, "big"))  # unambiguous: no two requests share a key
        digest.update(part)
    return "http:" + digest.hexdigest()


def has_session(scope: dict) -> bool:
    name = settings.SESSION_COOKIE_NAME.encode()
    return any(k == b"cookie" and name + b"=" in v for k, v in scope["headers"])


class CachedReads:
    """ASGI middleware: serve hits before Django; keep Django's reusable answers."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.reader = DataVersionReader()

    async def __call__(self, scope: dict, receive, send) -> None:
        if (
            scope["type"] != "http"
            or scope["path"] != PATH
            or scope["method"] not in ("GET", "POST")
            or not settings.GRAPHQL_CACHE_MB
            or has_session(scope)
        ):
            return await self.app(scope, receive, send)
        messages, body = await read_body(receive)
        if body is None:  # too large or the client went away: Django deals with it
            return await self.app(scope, replay(messages, receive), send)
        stamp = await self.reader.stamp()
        if stamp is None:
            return await self.app(scope, replay(messages, receive), send)
        key = request_key(scope, body, stamp)
        hit = cache.responses.get(key)
        if hit is not None:
            return await send_cached(send, hit, stamp)
        verdict: dict = {}
        scope = {**scope, "stats.data_version": stamp, "stats.response_cache": verdict}
        await self.app(scope, replay(messages, receive), recording(send, key, verdict))


async def read_body(receive) -> tuple[list[dict], bytes | None]:
    """The request's messages (to replay to Django) and its body; None when over the upload limit."""
    messages, chunks, size = [], [], 0
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE or 2**31
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return messages, None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return messages, None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return messages, b"".join(chunks)


def replay(messages: list[dict], receive):
    """A receive callable that gives back the messages already read, then the live ones."""
    pending = list(messages)

    async def again() -> dict:
        return pending.pop(0) if pending else await receive()

    return again


def recording(send, key: str, verdict: dict):
    """A send callable that passes Django's response on and keeps it when the view said it is reusable."""
    start: dict = {}
    chunks: list[bytes] = []

    async def record(message: dict) -> None:
        if message["type"] == "http.response.start":
            start.update(message)
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False) and reusable(start, verdict):
                headers = [(k, v) for k, v in start.get("headers", []) if k.lower() not in (b"x-cache",)]
                cache.responses.put(key, (headers, b"".join(chunks)))
        await send(message)

    return record


def reusable(start: dict, verdict: dict) -> bool:
    headers = start.get("headers", [])
    return (
        start.get("status") == 200
        and verdict.get("cacheable", False)
        and not any(k.lower() == b"set-cookie" for k, _ in headers)
    )


async def send_cached(send, entry: tuple[list, bytes], stamp: tuple[int, str]) -> None:
    headers, body = entry
    headers = [
        *((k, v) for k, v in headers if k.lower() != b"x-data-version"),
        (b"x-data-version", str(stamp[0]).encode()),
        (b"x-cache", b"hit"),
    ]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
