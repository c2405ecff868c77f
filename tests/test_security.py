"""Login throttling and the Content-Security-Policy (see docs/security.md)."""

import base64
import hashlib
import re
from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client

PASSWORD = "a-long-test-password-1"


@pytest.fixture
def dana(db):
    return User.objects.create_user("dana", password=PASSWORD, is_staff=True)


def log_in(password: str, username: str = "dana", address: str = "203.0.113.7"):
    client = Client(REMOTE_ADDR=address)
    return client.post("/admin/login/?next=/admin/", {"username": username, "password": password})


def test_admin_login_is_throttled_after_repeated_failures_then_cools_off(dana):
    limit = settings.AXES_FAILURE_LIMIT
    for _ in range(limit - 1):
        assert log_in("wrong").status_code == 200  # the form again, with its error
    refused = log_in("wrong")
    assert refused.status_code == 429
    assert "too many login attempts" in refused.content.decode().lower()
    assert log_in(PASSWORD).status_code == 429  # even the right password, during the cool-off

    assert log_in(PASSWORD, address="198.51.100.1").status_code == 302  # not a lockout of the account itself

    AccessAttempt.objects.update(attempt_time=AccessAttempt.objects.get().attempt_time - timedelta(minutes=16))
    assert log_in(PASSWORD).status_code == 302  # the cool-off is over: no permanent lockout
    assert not AccessAttempt.objects.exists()  # and a success starts the count afresh


def test_failures_below_the_limit_do_not_lock_anyone_out(dana):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        log_in("wrong")
    assert log_in(PASSWORD).status_code == 302


def directives(header: str) -> dict[str, list[str]]:
    return {part.split()[0]: part.split()[1:] for part in header.split("; ")}


def test_pages_carry_a_policy_that_allows_only_this_sites_scripts(client):
    policy = directives(client.get("/admin/login/")["Content-Security-Policy"])
    assert policy["script-src"] == ["'self'"]
    assert policy["object-src"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert "'unsafe-inline'" not in policy["default-src"]


def test_graphiql_runs_its_inline_script_by_nonce_and_loads_only_its_vendored_bundles(db, client):
    response = client.get("/graphql", HTTP_ACCEPT="text/html")
    policy = directives(response["Content-Security-Policy"])
    page = response.content.decode()
    nonces = re.findall(r"<script nonce=\"([^\"]+)\">", page)
    assert len(nonces) >= 1
    assert len(set(nonces)) == 1
    assert policy["script-src"] == ["'self'", f"'nonce-{nonces[0]}'"]
    assert policy["style-src"] == ["'self'", "'unsafe-inline'"]
    assert "<script>" not in page  # every inline script carries the nonce
    assert "unpkg.com" not in page
    tags = re.findall(r"<(?:script|link)\s[^>]*(?:src|href)=\"/static/vendor/[^>]*>", page)
    assert len(tags) == 7  # react, react-dom, js-cookie, graphiql (js, css), its explorer plugin (js, css)
    for tag in tags:
        assert 'integrity="sha384-' in tag, tag
        url = re.search(r"(?:src|href)=\"([^\"]+)\"", tag)[1]
        served = b"".join(client.get(url).streaming_content)
        digest = base64.b64encode(hashlib.sha384(served).digest()).decode()
        assert f'integrity="sha384-{digest}"' in tag, tag
    again = client.get("/graphql", HTTP_ACCEPT="text/html")["Content-Security-Policy"]
    assert again != response["Content-Security-Policy"]  # a fresh nonce per page
