"""GraphQL requests through ncmec.handler: Django's sync handler, every middleware, one thread crossing."""

import asyncio
import http.client
import json
import threading

import pytest
from django.core import signals
from django.db import connection

from bench import server
from ncmec.handler import OneCrossingHandler

QUERY = json.dumps({"query": "{ dataVersion }"}).encode()
ORIGIN = "https://app.example.org"


@pytest.fixture(scope="module")
def port(database_url):
    # The response cache off: every request goes through Django (no fast path in front).
    with server.running(
        database_url,
        workers=1,
        GRAPHQL_CACHE_MB="0",
        CORS_ALLOWED_ORIGINS=ORIGIN,
        SECRET_KEY="handler-test-" * 5,
        HTTPS="0",
    ) as port:
        yield port


def post(port: int, body: bytes = QUERY, **headers) -> tuple[http.client.HTTPResponse, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("POST", "/graphql", body=body, headers={"Content-Type": "application/json", **headers})
    response = conn.getresponse()
    content = response.read()
    conn.close()
    return response, content


@pytest.mark.django_db
def test_an_answer_carries_every_middlewares_headers(port):
    response, content = post(port, Origin=ORIGIN)
    assert response.status == 200
    assert "dataVersion" in json.loads(content)["data"]
    assert response.getheader("Content-Security-Policy").startswith("default-src 'self'")  # ncmec.csp
    assert response.getheader("X-Content-Type-Options") == "nosniff"  # SecurityMiddleware
    assert response.getheader("Referrer-Policy") == "same-origin"
    assert response.getheader("Cross-Origin-Opener-Policy") == "same-origin"
    assert response.getheader("X-Frame-Options") == "DENY"  # XFrameOptionsMiddleware
    assert response.getheader("Access-Control-Allow-Origin") == ORIGIN  # corsheaders
    assert "origin" in response.getheader("Vary").lower()
    assert response.getheader("X-Data-Version")  # the view


@pytest.mark.django_db
def test_a_session_without_the_csrf_token_is_refused(port):
    response, _ = post(port, Cookie="sessionid=abc")
    assert response.status == 403  # Django's CSRF check, as under Django's own handler


@pytest.mark.django_db
def test_an_unlisted_origin_gets_no_cors_grant(port):
    response, _ = post(port, Origin="https://evil.example")
    assert response.status == 200
    assert response.getheader("Access-Control-Allow-Origin") is None


@pytest.mark.django_db(transaction=True)
def test_started_view_and_finished_run_on_one_thread_and_the_connection_is_given_back():
    seen: list[tuple[str, int, object]] = []

    def started(**kwargs):
        seen.append(("started", threading.get_ident(), None))

    def finished(**kwargs):  # after Django's close_old_connections (connected first)
        seen.append(("finished", threading.get_ident(), connection.connection))

    handler = OneCrossingHandler()
    signals.request_started.connect(started)
    signals.request_finished.connect(finished)
    sent: list[dict] = []
    scope = {
        "type": "http", "method": "POST", "path": "/graphql", "raw_path": b"/graphql", "root_path": "",
        "scheme": "http", "query_string": b"", "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 80),
        "headers": [(b"host", b"127.0.0.1"), (b"content-type", b"application/json")],
    }  # fmt: skip

    async def receive():
        return {"type": "http.request", "body": QUERY, "more_body": False}

    async def send(message):
        sent.append(message)

    try:
        asyncio.run(handler(scope, receive, send))
    finally:
        signals.request_started.disconnect(started)
        signals.request_finished.disconnect(finished)
        handler.executor.shutdown()
    assert sent[0]["status"] == 200
    assert b"dataVersion" in sent[1]["body"]
    assert [s[0] for s in seen] == ["started", "finished"]
    assert seen[0][1] == seen[1][1] != threading.get_ident()  # one worker thread, not this one
    assert seen[1][2] is None  # the view's connection closed (returned to the pool) before the answer left
