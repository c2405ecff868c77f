"""Django's ASGI handler with one thread crossing per GraphQL request.

Django's own ASGI handler runs the middleware chain in async mode: each sync-only middleware
(pghistory's HistoryMiddleware, WhiteNoise...) and the sync view is adapted with
``sync_to_async``/``async_to_sync``, and every request gets a fresh ``ThreadSensitiveContext``,
so a read starts a thread and crosses between it and the event loop four times. Measured with
py-spy, that was 25-40 % of a small read's time.

For requests to the GraphQL endpoint this handler reads the body on the event loop, then runs
everything Django's WSGI handler runs, in that order, in one call on a persistent thread pool:
``request_started``, the request object, the sync middleware chain (every middleware in
MIDDLEWARE, as ``load_middleware(is_async=False)`` builds it) and the view, and the response's
``close()`` (``request_finished``: the database connection goes back to the pool from the thread
that used it). The response is then sent from the event loop. Its body is complete by then (the
GraphQL view never streams); a streaming response would be read to the end and closed on the same
thread. Every other path (admin, explorer downloads that stream, static files) goes through
Django's ASGI handler unchanged.

The pool has ``ASGI_THREADS`` threads (at most ``DB_POOL_SIZE``, so a thread never waits for a
database connection another thread of this process holds); requests beyond that wait for a
thread, holding nothing.
"""

from __future__ import annotations

import asyncio
import contextvars
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.core.handlers.base import BaseHandler
from django.http import HttpResponse
from django.urls import set_script_prefix


class OneCrossingHandler(ASGIHandler):
    """ASGIHandler; requests to ``paths`` run Django's sync handler in one call on a thread pool."""

    def __init__(self, paths: tuple[str, ...] = ("/graphql",)) -> None:
        super().__init__()  # the async chain, for every other path
        self.paths = paths
        self.sync_handler = BaseHandler()
        self.sync_handler.load_middleware(is_async=False)  # the chain a WSGI server runs
        self.executor = ThreadPoolExecutor(max_workers=threads(), thread_name_prefix="django")

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"] not in self.paths:
            return await super().__call__(scope, receive, send)
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        context = contextvars.copy_context()  # as asyncio.to_thread and sync_to_async pass it on
        try:
            response = await asyncio.get_running_loop().run_in_executor(
                self.executor, context.run, self.respond, scope, body_file
            )
        finally:
            body_file.close()
        await self.send_response(response, send)

    def respond(self, scope: dict, body_file) -> HttpResponse:
        """What WSGIHandler.__call__ does, then the response's close(): on this one thread."""
        set_script_prefix(get_script_prefix(scope))
        signals.request_started.send(sender=self.__class__, scope=scope)
        request, response = self.create_request(scope, body_file)
        if request is not None:
            response = self.sync_handler.get_response(request)
            response._handler_class = self.__class__
        if response.streaming:  # not the GraphQL view's: read here, where its iterator may use the database
            response = materialized(response)
        else:
            response.close()  # request_finished: connections closed (returned to the pool) on this thread
        return response


def materialized(response) -> HttpResponse:
    """A streaming response's whole body as a plain response with its status, headers and cookies."""
    try:
        content = b"".join(response.streaming_content)
    finally:
        response.close()
    plain = HttpResponse(content, status=response.status_code)
    for header, value in response.items():
        plain[header] = value
    plain.cookies = response.cookies
    return plain


def threads() -> int:
    """ASGI_THREADS, at most the database pool's size (each thread holds at most one connection)."""
    wanted = settings.ASGI_THREADS
    pool = settings.DATABASES["default"].get("OPTIONS", {}).get("pool")
    if isinstance(pool, dict) and pool.get("max_size"):
        wanted = min(wanted, pool["max_size"])
    return max(1, wanted)
