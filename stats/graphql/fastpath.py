"""Repeated anonymous reads answered in front of Django, from the response cache.

An ASGI layer around Django's handler. For an anonymous request to /graphql (no session or CSRF
cookie, as Django's own cookie parser reads the Cookie header) it reads the data version with one
query from an async connection pool and looks the request up in both levels of the response cache:
a hit is sent back as stored (status, every header Django's middleware set, body) without entering
Django, its middleware or a worker thread, and a matching ``If-None-Match`` gets a 304. A miss goes
to Django as usual, with the stamp in the scope; when the view says the answer is reusable (a
query, no errors, no cookie set) the whole response is kept under the stamp the view used.

The key is the request's URL (scheme, path, query string; the Host only has to pass Django's
check), method and body, the data version, and the values of the request headers the response's
``Vary`` names (learned from Django's first answer, as Django's cache middleware does). The pool
is psycopg's, built from the same settings as Django's own connection (so ``sslmode`` and the rest
apply); requests share it without a lock. With
the database unreachable, anonymous requests get the view's 503 at once.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from typing import Any

import psycopg
from django.conf import settings
from django.http.cookie import parse_cookie
from django.http.request import split_domain_port, validate_host
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from ncmec import direct
from stats.graphql import cache, http_caching
from stats.models.observations import DATA_VERSION_SQL

logger = logging.getLogger(__name__)

PATH = "/graphql"
POOL_TIMEOUT_S = 5.0  # all connections busy (a busy server, not a dead database): wait this long, then Django answers
POOL_SIZE = 8  # each request holds a connection for one indexed read
PROBE_TIMEOUT_S = 1  # once the database failed, one connection attempt this long says whether it is back
RETRY_AFTER_FAILURE_S = 1.0  # after a failed read, requests get the 503 without trying again
BUSY = (-1, "")  # the stamp when the pool had no free connection in time: Django reads it itself
# The scheme behind a proxy (the Host is checked against ALLOWED_HOSTS instead: answers do not name it,
# so every web replica, whatever address the proxy used, shares one entry).
URL_HEADERS = (b"x-forwarded-proto",)


def connection_kwargs() -> dict:
    """psycopg's connect arguments for the primary, exactly as Django builds them (sslmode and all)."""
    return direct.connection_kwargs("ncmec-response-cache")


async def _configure(connection: psycopg.AsyncConnection) -> None:
    await connection.execute("SET TIME ZONE 'UTC'")  # the timestamp's text as Django reads it


class DataVersionReader:
    """The data version stamp over a pool of async connections per server process."""

    def __init__(self, **overrides) -> None:
        self._pool: AsyncConnectionPool | None = None
        self._failed_at = 0.0
        self.overrides = overrides  # connection arguments of another user of such a pool (stats.graphql.planned)

    async def pool(self) -> AsyncConnectionPool:
        """The process's pool (opened on first use), for another reader in the ASGI layer."""
        return await self._opened()

    async def _opened(self) -> AsyncConnectionPool:
        if self._pool is None:  # created in the server's event loop, on the first request
            self._pool = AsyncConnectionPool(
                kwargs={**connection_kwargs(), **self.overrides}, min_size=1, max_size=POOL_SIZE,
                timeout=POOL_TIMEOUT_S, configure=_configure, open=False, name="ncmec-response-cache",
            )  # fmt: skip
            await self._pool.open(wait=False)
        return self._pool

    async def stamp(self) -> tuple[int, str] | None:
        """(counter, timestamp) as ``DataVersion.stamp()`` reads it; None when the database cannot be read,
        ``BUSY`` when every pooled connection stayed in use."""
        if time.monotonic() - self._failed_at < RETRY_AFTER_FAILURE_S:
            return None
        pool = await self._opened()
        try:
            if self._failed_at and not pool.get_stats().get("pool_size"):
                # Down a moment ago and not reconnected: one short attempt, not a wait on the pool.
                connection = await psycopg.AsyncConnection.connect(
                    **{**connection_kwargs(), **self.overrides, "connect_timeout": PROBE_TIMEOUT_S}
                )
                async with connection:
                    await _configure(connection)
                    row = await (await connection.execute(DATA_VERSION_SQL)).fetchone()
            else:
                async with pool.connection() as connection:
                    row = await (await connection.execute(DATA_VERSION_SQL)).fetchone()
        except PoolTimeout:
            return BUSY
        except psycopg.Error as exc:
            if not self._failed_at:
                logger.warning("response cache: cannot read the data version (%s); answering 503", exc)
            self._failed_at = time.monotonic()
            return None
        if self._failed_at:
            logger.info("response cache: the database answers again")
        self._failed_at = 0.0
        return (row[0], row[1].isoformat()) if row else (0, "")


def request_key(scope: dict, body: bytes, stamp: tuple[int, str], vary: tuple[bytes, ...]) -> str:
    headers = request_headers(scope)
    parts = [
        repr(stamp).encode(),
        scope["method"].encode(),
        scope.get("scheme", "http").encode(),
        scope["path"].encode(),
        scope.get("query_string", b""),
        *(headers.get(name, b"") for name in URL_HEADERS),
        *(part for name in vary for part in (name, headers.get(name, b""))),
        body,
    ]
    digest = hashlib.sha256()
    for part in parts:
        digest.update(len(part).to_bytes(8, "big"))  # unambiguous: no two requests share a key
        digest.update(part)
    return "http:" + digest.hexdigest()


def request_headers(scope: dict) -> dict[bytes, bytes]:
    """Header names lower-cased; repeated headers joined as Django joins them (Cookie with '; ')."""
    joined: dict[bytes, list[bytes]] = {}
    for name, value in scope["headers"]:
        joined.setdefault(name.lower(), []).append(value)
    return {name: (b"; " if name == b"cookie" else b",").join(values) for name, values in joined.items()}


def allowed_host(scope: dict) -> bool:
    """Django's own Host check; a refused host goes to Django, which answers 400."""
    domain, _ = split_domain_port(request_headers(scope).get(b"host", b"").decode("latin-1"))
    return bool(domain) and validate_host(domain, settings.ALLOWED_HOSTS)


def has_session(scope: dict) -> bool:
    """A session or CSRF cookie, as Django parses the Cookie header: then Django answers."""
    cookie = request_headers(scope).get(b"cookie")
    return cookie is not None and http_caching.has_private_cookie(parse_cookie(cookie.decode("latin-1")))


def vary_names(headers: list[tuple[bytes, bytes]]) -> tuple[bytes, ...] | None:
    """The request headers a response varies on, lower-cased and sorted; None for ``Vary: *``."""
    names = sorted({n.strip().lower() for k, v in headers if k.lower() == b"vary" for n in v.split(b",") if n.strip()})
    return None if b"*" in names else tuple(names)


class CachedReads:
    """ASGI middleware: serve hits before Django; keep Django's reusable answers."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.reader = DataVersionReader()
        self.vary: dict[str, tuple[bytes, ...]] = {}  # method -> the Vary of its last stored answer

    async def __call__(self, scope: dict, receive, send) -> None:
        if (
            scope["type"] != "http"
            or scope["path"] != PATH
            or scope["method"] not in ("GET", "POST")
            or not settings.GRAPHQL_CACHE_MB
            or has_session(scope)
            or not allowed_host(scope)
        ):
            return await self.app(scope, receive, send)
        messages, body = await read_body(receive)
        if body is None:  # too large or the client went away: Django deals with it
            return await self.app(scope, replay(messages, receive), send)
        stamp = await self.reader.stamp()
        if stamp is None:
            return await send_unavailable(send)
        if stamp is BUSY:
            return await self.app(scope, replay(messages, receive), send)
        vary = self.vary.get(scope["method"])
        if vary is not None:
            hit = await lookup(request_key(scope, body, stamp, vary))
            if hit is not None:
                conditional = request_headers(scope).get(b"if-none-match") if scope["method"] == "GET" else None
                return await send_cached(send, hit, stamp, conditional)
        verdict: dict = {}
        scope = {**scope, "stats.data_version": stamp, "stats.response_cache": verdict}
        await self.app(scope, replay(messages, receive), recording(send, self, scope, body, verdict))

    def keep(self, scope: dict, body: bytes, verdict: dict, headers: list, content: bytes) -> None:
        vary = vary_names(headers)
        if vary is None:
            return
        self.vary[scope["method"]] = vary
        kept = [(k, v) for k, v in headers if k.lower() != b"x-cache"]
        cache.responses.put(request_key(scope, body, verdict["stamp"], vary), (kept, content))


async def lookup(key: str) -> cache.Entry | None:
    """Both cache levels; the shared one (a network round trip) off the event loop."""
    entry = cache.responses.local.get(key)
    if entry is None and cache.responses.shared.configured:
        entry = await asyncio.to_thread(cache.responses.get, key)
    return entry


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


def recording(send, fastpath: CachedReads, scope: dict, body: bytes, verdict: dict):
    """A send callable that passes Django's response on and keeps it when the view said it is reusable."""
    start: dict = {}
    chunks: list[bytes] = []

    async def record(message: dict) -> None:
        if message["type"] == "http.response.start":
            start.update(message)
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False) and reusable(start, verdict):
                # Kept before the last bytes go out: the next request, to any process, finds it.
                keep = fastpath.keep, scope, body, verdict, start.get("headers", []), b"".join(chunks)
                if cache.responses.shared.configured:
                    await asyncio.to_thread(*keep)
                else:
                    keep[0](*keep[1:])
        await send(message)

    return record


def reusable(start: dict, verdict: dict) -> bool:
    headers = start.get("headers", [])
    return (
        start.get("status") == 200
        and verdict.get("cacheable", False)
        and not any(k.lower() == b"set-cookie" for k, _ in headers)
    )


async def send_cached(send, entry: tuple[list, bytes], stamp: tuple[int, str], if_none_match: bytes | None) -> None:
    headers, body = entry
    headers = [
        *((k, v) for k, v in headers if k.lower() != b"x-data-version"),
        (b"x-data-version", str(stamp[0]).encode()),
        (b"x-cache", b"hit"),
    ]
    etag = next((v for k, v in headers if k.lower() == b"etag"), None)
    if etag and if_none_match and (etag in [t.strip() for t in if_none_match.split(b",")] or if_none_match == b"*"):
        unsent = (b"content-length", b"content-type")
        headers = [(k, v) for k, v in headers if k.lower() not in unsent]
        await send({"type": "http.response.start", "status": 304, "headers": headers})
        await send({"type": "http.response.body", "body": b""})
        return
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def send_unavailable(send) -> None:
    """The view's 503, with the headers every answer carries."""
    from stats.graphql.views import database_unavailable

    response = database_unavailable()
    headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in response.items()]
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": response.content})
