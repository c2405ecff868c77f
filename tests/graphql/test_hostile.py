"""Hostile requests (issue #16) against the real server: `serve` with DEBUG off and two workers.

Each request shape of bench/hostile.py is sent over HTTP. Every one is answered with the
status it should get (a 400 naming what is wrong, or a GraphQL error for a mistake inside a valid
request), no answer contains what it must hide (suggestions, a long echo of the input), both
workers keep answering, neither grows by more than 50 MB, and nothing is logged at ERROR.
The server's own time budget per client is checked with a second server (a tiny budget).
"""

import json
import re

import pytest

from bench import hostile, server

pytestmark = pytest.mark.django_db  # the test database must exist; nothing is written through it
MAX_GROWTH_MB = 50
ERROR_LINE = re.compile(r"\bERROR\b|Traceback")


class Server:
    def __init__(self, port: int, log) -> None:
        self.port = port
        self.log = log
        self.pid = hostile.server_pid_on(port)

    def errors_logged(self) -> list[str]:
        return [line for line in self.log.read_text(errors="replace").splitlines() if ERROR_LINE.search(line)]


def started(database_url: str, log, workers: int = 2, **env: str):
    settings = {"DEBUG": "0", "HTTPS": "0", "SECRET_KEY": "hostile-test-" * 5, **env}
    return server.running(database_url, workers=workers, log=log, **settings)


@pytest.fixture(scope="module")
def live(database_url, tmp_path_factory):
    log = tmp_path_factory.mktemp("hostile") / "serve.log"
    with started(database_url, log, GRAPHQL_RATE_BUDGET_MS="0") as port:
        running = Server(port, log)
        for _ in range(8):  # both workers have answered once (their first request's imports are not growth)
            assert hostile.probe(port) == 200
        yield running


@pytest.mark.parametrize("case", hostile.CASES, ids=[c.name for c in hostile.CASES])
def test_a_hostile_request_is_answered_cheaply_and_the_workers_stay_healthy(live, case):
    measured = hostile.measure(live.port, live.pid, case)
    assert set(measured.statuses) <= case.expect, (measured.statuses, measured.answer)
    assert measured.alive
    assert measured.growth_mb <= MAX_GROWTH_MB
    for hidden in case.hides:
        assert hidden not in measured.answer
    assert live.errors_logged() == []


def test_refusals_say_what_is_wrong(live):
    def message(case_name: str) -> str:
        case = hostile.BY_NAME[case_name]
        answer = hostile.send(live.port, case, next(case.bodies()))
        assert answer.status == 400
        return json.loads(answer.body)["errors"][0]["message"]

    assert message("fragments-20") == (
        "The document selects 1048576 fields once its fragments are expanded; at most 1000 are allowed."
    )
    assert message("names-1mb") == "The request is 1048588 bytes; at most 131072 are accepted."
    assert message("aggregate-years-5000") == "variables.years: 5000 items; at most 1000 are allowed."
    assert message("breakdown-5000") == "variables.b: 5000 items; at most 1000 are allowed."
    assert message("body-string") == 'The request body must be a JSON object with a "query" string, not a string.'
    assert message("body-null") == 'The request body must be a JSON object with a "query" string, not null.'
    assert message("body-invalid-utf8") == "The request body is not valid UTF-8 (at byte offset 26)."
    assert message("variables-nested-5000") == "The request body nests too deeply."
    assert message("string-nul") == (
        "variables.s: a string may not contain NUL (U+0000) or unpaired surrogate characters."
    )
    assert message("directives-8000") == "The document has more than 2000 tokens; at most 2000 are allowed."
    assert message("echo-100kb") == "The document is 100032 characters long; at most 32768 are allowed."
    assert live.errors_logged() == []


def test_an_echoed_argument_is_quoted_at_most_100_characters(live):
    case = hostile.BY_NAME["echo-30kb"]
    answer = hostile.send(live.port, case, next(case.bodies()))
    (error,) = json.loads(answer.body)["errors"]
    assert error["message"] == "unknown indicator '" + "y" * 100 + "…'"


def test_each_client_has_a_budget_of_server_time(database_url, tmp_path):
    """With a 1 ms budget, an uncached answer spends it: the next uncached query is a 429 with
    Retry-After, while a repeat of the answered query is still served from the cache. One worker:
    the response cache and the local-memory counters are per process."""
    log = tmp_path / "serve.log"
    budget = {"GRAPHQL_RATE_BUDGET_MS": "1", "GRAPHQL_RATE_WINDOW_S": "600"}
    with started(database_url, log, workers=1, **budget) as port:
        running = Server(port, log)
        assert query(port, '{ indicator(code: "missing.cases") { name } }').status == 200
        refused = query(port, '{ series(indicator: "missing.cases") { year } }')
        assert refused.status == 429
        assert 0 < int(refused.headers["retry-after"]) <= 600
        assert "ms of server time on uncached answers" in json.loads(refused.body)["errors"][0]["message"]
        assert query(port, '{ indicator(code: "missing.cases") { name } }').status == 200  # from the cache: free
        assert running.errors_logged() == []


def query(port: int, document: str) -> hostile.Answer:
    body = hostile.post({"query": document})
    return hostile.send(port, hostile.Case("query", document, hostile.one(lambda: body)), body)
