"""Scale out on real engines: two `serve` processes sharing a real redis-server, anonymous reads on a
real streaming replica (made with the embedded PostgreSQL's own pg_basebackup), and each of them
stopped and started again under reads. No answer is ever older than the data version it carries.
"""

import http.client
import json
import os
import threading
from pathlib import Path

import psycopg
import pytest

from bench import engines, server

pytestmark = pytest.mark.django_db  # the test database must exist; writes go through their own connection
SECRET = {"SECRET_KEY": "scale-out-test-" * 4, "HTTPS": "0"}
FIGURE = """SELECT o.id FROM stats_observation o JOIN stats_indicator i ON i.id = o.indicator_id
            JOIN stats_source s ON s.id = o.source_id WHERE i.code = 'missing.cases' AND o.year = 2021
            AND s.slug = 'impact-2021' AND o.is_preferred AND o.corrected_value IS NULL LIMIT 1"""


def unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def redis_server():
    reason = engines.have_tools()
    if reason:
        unavailable(reason)
    with engines.redis() as redis:
        yield redis


@pytest.fixture(scope="module")
def standby(database_url):
    from django.conf import settings

    if not settings.LOCAL_MODE:
        pytest.skip("the replica is made from the embedded PostgreSQL; DATABASE_URL points elsewhere")
    with engines.replica() as replica:
        yield replica


@pytest.fixture(scope="module")
def figure(database_url):
    """An observation the tests correct (restored afterwards)."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        (observation,) = conn.execute(FIGURE).fetchone()
    yield observation
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE stats_observation SET corrected_value = NULL, correction_reason = '' WHERE id = %s", [observation]
        )


def correct(database_url: str, observation: int, value: int) -> int:
    """Commit a correction on the primary; the data version it made."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE stats_observation SET corrected_value = %s, correction_reason = 'scale-out test' WHERE id = %s",
            [value, observation],
        )
        return conn.execute("SELECT value FROM stats_dataversion").fetchone()[0]


def ask(port: int, query: str, method: str = "POST", **headers) -> tuple[http.client.HTTPResponse, dict]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    if method == "GET":
        from urllib.parse import quote

        connection.request("GET", "/graphql?query=" + quote(query), headers={"Accept": "application/json", **headers})
    else:
        body = json.dumps({"query": query})
        connection.request("POST", "/graphql", body, {"Content-Type": "application/json", **headers})
    response = connection.getresponse()
    content = response.read()
    connection.close()
    return response, (json.loads(content) if content else {})


def read_figure(port: int, observation: int) -> tuple[int, str | None, int]:
    """(status, the figure's correction, the data version the answer claims)."""
    query = '{ observations(filter: {indicators: ["missing.cases"], year: 2021}, limit: 10000) '
    query += "{ items { id correctedValue } } }"
    response, body = ask(port, query)
    if response.status != 200:
        return response.status, None, 0
    assert "errors" not in body, body
    value = next(i["correctedValue"] for i in body["data"]["observations"]["items"] if i["id"] == str(observation))
    return 200, value, int(response.getheader("X-Data-Version"))


def test_two_processes_share_one_redis_and_survive_its_loss(database_url, redis_server, tmp_path):
    env = {**SECRET, "REDIS_URL": redis_server.url}
    with (
        server.running(database_url, workers=1, log=tmp_path / "a.log", **env) as a,
        server.running(database_url, workers=1, log=tmp_path / "b.log", **env) as b,
    ):
        for port in (a, b):  # each learns the answers' Vary on its first request
            ask(port, "{ dataVersion }")
        query = '{ indicator(code: "missing.cases") { code name } }'
        assert ask(a, query)[0].getheader("X-Cache") == "miss"
        assert ask(b, query)[0].getheader("X-Cache") == "hit"  # computed by the other process
        # Redis goes away: both answer from the database, say so once in the log, and never fail.
        redis_server.stop()
        try:
            for port in (a, b, a, b):
                response, body = ask(port, '{ indicator(code: "amber.recoveries") { code } }')
                assert (response.status, "errors" in body) == (200, False)
            assert "shared cache unavailable" in (tmp_path / "a.log").read_text()
            ready = json.loads(http_get(a, "/readyz"))
            assert (ready["status"], ready["checks"]["cache"][:8]) == ("ready", "degraded")
        finally:
            redis_server.start()
        # Back: a fresh answer from one process is a hit on the other again.
        attempt = iter(range(10_000))

        def shared_again() -> bool:
            query = f'{{ again{next(attempt)}: indicator(code: "missing.cases") {{ code }} }}'
            ask(a, query)
            return ask(b, query)[0].getheader("X-Cache") == "hit"

        engines.wait_for(shared_again, "the shared cache to be used again", 30)
        assert json.loads(http_get(b, "/readyz"))["checks"]["cache"] == "ok"


def http_get(port: int, path: str) -> bytes:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("GET", path)
    content = connection.getresponse().read()
    connection.close()
    return content


def test_anonymous_reads_come_from_the_replica_and_are_never_older_than_their_version(
    database_url, standby, figure, tmp_path
):
    env = {**SECRET, "DATABASE_REPLICA_URLS": standby.url("test_ncmec"), "REPLICA_MAX_LAG_SECONDS": "8"}
    with server.running(database_url, workers=1, log=tmp_path / "serve.log", **env) as port:
        before = correct(database_url, figure, 1111)
        engines.wait_for(lambda: standby.replayed("test_ncmec", database_url), "the replica to replay")
        with psycopg.connect(standby.url("test_ncmec"), autocommit=True) as replica:
            replica.execute("SELECT pg_wal_replay_pause()")
            try:
                after = correct(database_url, figure, 2222)
                # The replica has not replayed the correction: its answer is the old figure, under the old version.
                assert read_figure(port, figure) == (200, "1111", before)
                # Past REPLICA_MAX_LAG_SECONDS the replica is skipped for the primary; never a mixed answer.
                seen = []

                def primary_answers() -> bool:
                    seen.append(read_figure(port, figure))
                    return seen[-1][1] == "2222"

                engines.wait_for(primary_answers, "reads to leave the lagging replica", 60)
                assert set(seen) <= {(200, "1111", before), (200, "2222", after)}
            finally:
                replica.execute("SELECT pg_wal_replay_resume()")
        engines.wait_for(lambda: standby.replayed("test_ncmec", database_url), "the replica to catch up")
        assert "skipped for the primary" in (tmp_path / "serve.log").read_text()

        # The replica stopped and started under concurrent reads: every answer is right, none fails.
        answers, stop = [], threading.Event()

        def reader() -> None:
            while not stop.is_set():
                answers.append(read_figure(port, figure))

        readers = [threading.Thread(target=reader) for _ in range(3)]
        for thread in readers:
            thread.start()
        try:
            engines.wait_for(lambda: len(answers) >= 5, "reads before the stop")
            standby.stop()
            count = len(answers)
            engines.wait_for(lambda: len(answers) >= count + 10, "reads while the replica is down")
            standby.start()
            count = len(answers)
            engines.wait_for(lambda: len(answers) >= count + 10, "reads after the restart")
        finally:
            stop.set()
            for thread in readers:
                thread.join(timeout=60)
        assert set(answers) == {(200, "2222", after)}


def test_the_database_down_gets_a_503_and_the_server_recovers(standby, tmp_path):
    """A server whose only database (here the standby) stops: 503 with Retry-After, then answers again."""
    url = standby.url("test_ncmec")
    with server.running(url, workers=1, args=("--no-migrate",), log=tmp_path / "serve.log", **SECRET) as port:
        assert ask(port, "{ dataVersion }")[0].status == 200
        assert json.loads(http_get(port, "/readyz"))["status"] == "ready"
        standby.stop()
        try:
            for query in ("{ dataVersion }", '{ indicator(code: "missing.cases") { code } }'):
                response, body = ask(port, query)
                assert (response.status, response.getheader("Retry-After")) == (503, "5")
                assert "database is unavailable" in body["errors"][0]["message"]
            assert json.loads(http_get(port, "/healthz")) == {"status": "ok"}
        finally:
            standby.start()
        engines.wait_for(lambda: ask(port, "{ dataVersion }")[0].status == 200, "the server to answer again", 30)


def test_the_compose_file_is_wired_for_scale_out():
    import yaml

    compose = yaml.safe_load((Path(__file__).resolve().parent.parent / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"proxy", "web", "migrate", "db", "db-replica", "redis"} <= set(services)
    web = services["web"]
    assert web["deploy"]["replicas"] >= 2
    assert "--no-migrate" in " ".join(web["command"])
    assert "ports" not in web  # only the proxy is exposed
    assert set(services["proxy"]["ports"]) == {"80:80", "443:443"}
    assert web["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services["migrate"]["restart"] == "no"
    env = web["environment"]
    assert env["REDIS_URL"].startswith("redis://redis:")
    assert "@db-replica:5432/" in env["DATABASE_REPLICA_URLS"]
    assert "@db:5432/" in env["DATABASE_URL"]
    for name in ("db", "db-replica"):
        assert services[name]["image"].startswith("postgres:18")
    for name, service in services.items():
        if name != "migrate":
            assert "healthcheck" in service, name
    text = (Path(__file__).resolve().parent.parent / "docker-compose.yml").read_text()
    for secret in ("POSTGRES_PASSWORD", "REPLICATION_PASSWORD", "SECRET_KEY"):
        assert "${" + secret + ":?" in text, secret
    assert ("PASSWORD:-" in text, "SECRET_KEY:-" in text) == (False, False)  # no default secrets
