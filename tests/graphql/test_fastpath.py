"""The response cache in front of Django (stats.graphql.fastpath), through the real server.

`serve` runs on the test database. Reads go over HTTP; the one write is committed by its own
connection (as any other entry point would) and undone afterwards.
"""

import http.client
import json
from urllib.parse import quote

import psycopg
import pytest

from bench import server

QUERY = '{ table(indicator: "missing.cases", year: 2021, rows: "case_type", columns: "case_status") '
QUERY += "{ rows { member { label } cells { valueText correctedValue } } } }"
VOLATILE = {"date", "x-cache"}  # set per response
pytestmark = pytest.mark.django_db  # the test database must exist; the tests themselves write nothing through it


@pytest.fixture(scope="module")
def port(database_url):
    with server.running(database_url, workers=1, SECRET_KEY="fast-path-test-" * 4, HTTPS="0") as port:
        yield port


def ask(port: int, method: str = "POST", body: bytes | None = None, path: str = "/graphql", **headers):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Content-Type": "application/json", "Accept": "application/json", **headers}
    if method == "POST" and body is None:
        body = json.dumps({"query": QUERY}).encode()
    connection.request(method, path, body=body, headers=headers)
    response = connection.getresponse()
    content = response.read()
    connection.close()
    return response, content


def test_a_repeat_gets_the_same_bytes_and_headers_without_entering_django(port):
    first, body = ask(port)
    again, same = ask(port)
    assert (first.status, first.getheader("X-Cache"), again.getheader("X-Cache")) == (200, "miss", "hit")
    assert same == body
    assert "errors" not in json.loads(body)
    headers = lambda r: sorted((k.lower(), v) for k, v in r.getheaders() if k.lower() not in VOLATILE)  # noqa: E731
    assert headers(again) == headers(first)
    # Django's middleware headers are replayed, not lost.
    assert again.getheader("Content-Security-Policy").startswith("default-src 'self'")
    assert again.getheader("X-Content-Type-Options") == "nosniff"
    assert again.getheader("X-Frame-Options") == "DENY"


def test_a_committed_write_is_seen_by_the_next_read(port, database_url):
    ask(port)
    before, content = ask(port)
    assert before.getheader("X-Cache") == "hit"
    assert '"correctedValue":"7777"' not in content.decode()
    with psycopg.connect(database_url, autocommit=True) as conn:
        (observation_id,) = conn.execute(
            """SELECT o.id FROM stats_observation o JOIN stats_indicator i ON i.id = o.indicator_id
               JOIN stats_source s ON s.id = o.source_id
               WHERE i.code = 'missing.cases' AND o.year = 2021 AND s.slug = 'impact-2021'
               AND o.is_preferred AND o.corrected_value IS NULL AND cardinality(o.member_ids) = 2 LIMIT 1"""
        ).fetchone()
        conn.execute(
            "UPDATE stats_observation SET corrected_value = 7777, correction_reason = 'fast path test' WHERE id = %s",
            [observation_id],
        )
        try:
            after, content = ask(port)
        finally:
            conn.execute(
                "UPDATE stats_observation SET corrected_value = NULL, correction_reason = '' WHERE id = %s",
                [observation_id],
            )
    assert after.getheader("X-Cache") == "miss"
    assert int(after.getheader("X-Data-Version")) > int(before.getheader("X-Data-Version"))
    assert '"correctedValue":"7777"' in content.decode()


def test_a_session_cookie_is_never_answered_from_the_anonymous_cache(port):
    ask(port)
    assert ask(port)[0].getheader("X-Cache") == "hit"
    # Same bytes, but with a session: Django's CSRF check runs (and refuses a POST without a token).
    refused, _ = ask(port, Cookie="sessionid=not-a-session")
    assert refused.status == 403
    assert refused.getheader("X-Cache") is None


def test_reads_over_get_are_kept_and_graphiql_is_rendered_by_django_every_time(port):
    path = "/graphql?query=" + quote("{ dataVersion }")
    ask(port, "GET", path=path)
    json_hit, body = ask(port, "GET", path=path)
    assert json_hit.getheader("X-Cache") == "hit"
    assert json.loads(body)["data"]["dataVersion"] > 0
    for _ in range(2):  # the page sets the csrftoken cookie GraphiQL needs: never a stored answer
        page, html = ask(port, "GET", Accept="text/html")
        assert page.status == 200
        assert page.getheader("Content-Type").startswith("text/html")
        assert "csrftoken=" in page.getheader("Set-Cookie")
        assert page.getheader("X-Cache") is None
        assert b"graphiql" in html.lower()


def test_errors_and_mutations_are_never_kept(port):
    bad = json.dumps({"query": '{ indicator(code: "missing.casez") { code } }'}).encode()
    assert [ask(port, body=bad)[0].getheader("X-Cache") for _ in range(2)] == ["miss", "miss"]
    flag = 'flagObservation(id: "1", flag: GARBLED, note: "n") { ... on OperationInfo { messages { kind } } }'
    mutation = json.dumps({"query": "mutation { " + flag + " }"})
    for _ in range(2):
        response, content = ask(port, body=mutation.encode())
        assert response.getheader("X-Cache") is None
        assert json.loads(content)["data"]["flagObservation"] == {"messages": [{"kind": "PERMISSION"}]}


def test_a_disallowed_host_is_refused_even_after_a_hit(port):
    ask(port)
    assert ask(port)[0].getheader("X-Cache") == "hit"
    refused, _ = ask(port, Host="evil.example.org")
    assert refused.status == 400


def test_a_session_cookie_is_seen_as_django_parses_it(port):
    ask(port)
    assert ask(port)[0].getheader("X-Cache") == "hit"
    # Django reads "sessionid =x" (a space before '=') and "theme=dark;sessionid=x" as a session: CSRF refuses.
    for cookie in ("sessionid =not-a-session", "theme=dark;sessionid=x"):
        refused, _ = ask(port, Cookie=cookie)
        assert (refused.status, refused.getheader("X-Cache")) == (403, None), cookie
    # A CSRF cookie alone (GraphiQL before logging in): anonymous, but answered by Django, privately.
    private, _ = ask(port, Cookie="csrftoken=abc")
    assert (private.status, private.getheader("X-Cache"), private.getheader("Cache-Control")) == (
        200, "miss", "private, no-store",
    )  # fmt: skip
    other, _ = ask(port, Cookie="theme=dark")  # an unrelated cookie: anonymous, Vary: Cookie keys on it
    assert (other.status, other.getheader("Cache-Control")) == (200, "no-cache")


def test_a_get_has_an_etag_and_answers_304_to_it_until_the_data_changes(port, database_url):
    path = "/graphql?query=" + quote('{ dataVersion indicators(topic: "cybertipline") { code } }')
    first, _ = ask(port, "GET", path=path)
    tag = first.getheader("ETag")
    assert first.status == 200
    assert tag.startswith('"' + first.getheader("X-Data-Version") + "-")
    assert first.getheader("Cache-Control") == "public, max-age=5, stale-while-revalidate=30"
    assert set(first.getheader("Vary").split(", ")) >= {"Accept", "Cookie"}
    for _ in range(2):  # from Django, then from the fast path
        again, empty = ask(port, "GET", path=path, **{"If-None-Match": tag})
        assert (again.status, empty, again.getheader("ETag")) == (304, b"", tag)
    assert ask(port, "GET", path=path, **{"If-None-Match": '"0-other"'})[0].status == 200
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("UPDATE stats_topic SET name = name WHERE code = 'cybertipline'")  # a write bumps the version
    changed, _ = ask(port, "GET", path=path, **{"If-None-Match": tag})
    assert changed.status == 200
    assert changed.getheader("ETag") != tag


def test_staff_and_cookie_answers_are_private(port):
    response, _ = ask(port, "GET", path="/graphql?query=" + quote("{ dataVersion }"), Cookie="csrftoken=abc")
    assert response.status == 200
    assert response.getheader("Cache-Control") == "private, no-store"
    assert response.getheader("ETag") is None
