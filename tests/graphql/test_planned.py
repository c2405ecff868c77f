"""Planned observation reads (stats.graphql.planned) through the real ASGI stack, in this process.

The stack is ncmec.asgi's (BodyLimit, CachedReads, PlannedReads, Django's one-crossing handler) on
the test database's published data. Whether a request entered Django is Django's own signal
(request_started); statements are counted where psycopg sends them. A planned answer is compared
byte for byte with Django's answer to the same request (GRAPHQL_PLANNED off).
"""

import asyncio
import json

import psycopg
import pytest
from django.core import signals
from django.core.cache import caches
from django.http import HttpRequest

from ncmec import replicas
from ncmec.handler import OneCrossingHandler
from stats.graphql import planned, ratelimit
from stats.graphql.fastpath import CachedReads
from stats.graphql.limits import BodyLimit

pytestmark = pytest.mark.django_db  # the published data, read by Django's threads and the planner's pool

PAGE = '{ observations(filter: {indicators: ["%s"]}, limit: %d) { items { id year value members { code } } } }'
LIST = "{ observations(order: [YEAR], limit: %d) { items { year value } } }"
INDICATOR_YEAR = (
    '{ observations(filter: {indicators: ["%s"], year: %d}, limit: 1000) { items { value members { code } } } }'
)
COUNT = '{ observations(filter: {indicators: ["%s"]}) { totalCount } }'
VARIABLES = """query Page($filter: ObservationFilter, $order: [ObservationOrder!], $limit: Int!, $offset: Int!) {
  page: observations(filter: $filter, order: $order, limit: $limit, offset: $offset) {
    totalCount hasNextPage offset limit
    items { id year since period value valueText qualifier correctedValue isPreferred version quote table note
            correctionReason members { code label order } }
  }
}"""
INDICATORS = ("missing.cases", "cybertipline.reports")
VOLATILE = {b"date"}


class Stack:
    """The ASGI application of ncmec.asgi, driven on one event loop; counts Django's requests and the
    statements psycopg's async connections (the ASGI layers' pools) send."""

    def __init__(self, monkeypatch) -> None:
        self.handler = OneCrossingHandler()
        self.planner = planned.PlannedReads(self.handler)
        self.app = BodyLimit(CachedReads(self.planner))
        self.runner = asyncio.Runner()
        self.django = 0
        self.statements = 0
        signals.request_started.connect(self._started)
        execute = psycopg.AsyncCursor.execute

        async def counted(cursor, *args, **kwargs):
            self.statements += 1
            return await execute(cursor, *args, **kwargs)

        monkeypatch.setattr(psycopg.AsyncCursor, "execute", counted)

    def _started(self, **kwargs) -> None:
        self.django += 1

    def close(self) -> None:
        signals.request_started.disconnect(self._started)
        pool = self.planner.reader._pool
        if pool is not None:
            self.runner.run(pool.close())
        self.runner.close()
        self.handler.executor.shutdown()

    def post(self, query: str, variables: dict | None = None, *, headers=(), client="127.0.0.1", **payload):
        """(status, headers, body, whether Django answered)."""
        body = json.dumps({"query": query, **({"variables": variables} if variables else {}), **payload}).encode()
        scope = {
            "type": "http", "method": "POST", "path": "/graphql", "raw_path": b"/graphql", "root_path": "",
            "scheme": "http", "query_string": b"", "client": (client, 5000), "server": ("127.0.0.1", 80),
            "headers": [(b"host", b"127.0.0.1"), (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()), *headers],
        }  # fmt: skip
        sent: list[dict] = []

        async def receive() -> dict:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict) -> None:
            sent.append(message)

        before = self.django
        self.runner.run(self.app(scope, receive, send))
        content = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
        headers = sorted((k.lower(), v) for k, v in sent[0]["headers"] if k.lower() not in VOLATILE)
        return sent[0]["status"], headers, content, self.django > before


@pytest.fixture
def stack(monkeypatch, settings):
    settings.GRAPHQL_CACHE_MB = 0  # every answer computed (the response cache is tested on its own below)
    found = Stack(monkeypatch)
    yield found
    found.close()


def planned_and_django(stack: Stack, settings, query: str, variables: dict | None = None):
    """The planned answer (after the document was answered once) and Django's answer to the same request."""
    stack.post(query, variables)
    answer = stack.post(query, variables)
    settings.GRAPHQL_PLANNED = False
    unplanned = stack.post(query, variables)
    settings.GRAPHQL_PLANNED = True
    assert unplanned[3]
    return answer, unplanned


def documents() -> list[tuple[str, dict | None]]:
    found = []
    for indicator in INDICATORS:
        found += [(PAGE % (indicator, limit), None) for limit in (1, 10, 100)]
        found += [(INDICATOR_YEAR % (indicator, 2021), None), (COUNT % indicator, None)]
    found += [(LIST % limit, None) for limit in (5, 10000)]
    return found


@pytest.mark.parametrize(("query", "variables"), documents())
def test_the_bench_documents_are_planned_and_the_same_bytes_and_headers(stack, settings, query, variables):
    assert stack.post(query, variables)[3], "the first request of a document is Django's"
    answer, unplanned = planned_and_django(stack, settings, query, variables)
    assert not answer[3], "planned: answered without entering Django"
    assert answer[:3] == unplanned[:3]
    assert json.loads(answer[2])["data"]["observations"]  # something was read


def test_variables_filters_orders_and_pages_are_the_same_bytes(stack, settings):
    cases = [
        {"filter": {"indicators": ["missing.cases"]}, "order": None, "limit": 7, "offset": 0},
        {"filter": {"indicators": ["missing.cases"]}, "order": None, "limit": 7, "offset": 7},
        {"filter": {"indicators": ["missing.cases"], "year": 2021}, "order": ["VALUE_DESC"], "limit": 50, "offset": 3},
        {"filter": {"indicators": INDICATORS}, "order": ["INDICATOR", "YEAR_DESC"], "limit": 100, "offset": 0},
        {"filter": {"members": [{"dimension": "case_type", "member": "Endangered runaways"}]}, "order": ["YEAR"],
         "limit": 20, "offset": 0},
        {"filter": {"yearFrom": 2019, "yearTo": 2022, "allSources": True}, "order": None, "limit": 300, "offset": 10},
        {"filter": {"topic": "cybertipline", "breakdown": ["state"]}, "order": ["MEMBER_ORDER"], "limit": 60,
         "offset": 0},
        {"filter": {"source": "impact-2021", "qualifier": "MORE_THAN", "flagged": False, "period": "ANNUAL"},
         "order": None, "limit": 40, "offset": 0},
        {"filter": {"breakdownIncludes": ["case_type"], "breakdown": ["case_type", "case_status"]}, "order": None,
         "limit": 40, "offset": 0},
        {"filter": {"indicators": ["missing.cases"], "year": 1900}, "order": None, "limit": 10, "offset": 0},  # empty
        {"filter": None, "order": ["VALUE"], "limit": 10000, "offset": 100000},  # past the end
    ]  # fmt: skip
    stack.post(VARIABLES, cases[0])  # Django learns the document
    escaped = False
    for variables in cases:
        answer, unplanned = planned_and_django(stack, settings, VARIABLES, variables)
        assert not answer[3], variables
        assert answer[:3] == unplanned[:3], variables
        escaped = escaped or b"\\u20" in answer[2]  # a printed quote's ’ or –, escaped as json.dumps does
    assert escaped
    pages = [json.loads(stack.post(VARIABLES, c)[2])["data"]["page"] for c in cases]
    assert [len(p["items"]) for p in pages][-2:] == [0, 0]
    assert pages[0]["hasNextPage"]
    assert pages[0]["totalCount"] > 7


def test_one_statement_whatever_the_number_of_rows_and_parents(stack, settings):
    """Rows of one indicator, then of two (parents: indicators; rows: page sizes), with members."""
    counts = {}
    for indicators in ([INDICATORS[0]], list(INDICATORS)):
        for limit in (1, 100, 1000):
            variables = {"filter": {"indicators": indicators}, "order": None, "limit": limit, "offset": 0}
            stack.post(VARIABLES, variables)  # Django, or planned and warm
            stack.post(VARIABLES, variables)
            before = stack.statements
            status, _, body, django = stack.post(VARIABLES, variables)
            assert status == 200
            assert not django
            counts[(len(indicators), limit)] = (
                stack.statements - before,
                len(json.loads(body)["data"]["page"]["items"]),
            )
    assert {statements for statements, _ in counts.values()} == {1}
    assert len({rows for _, rows in counts.values()}) > 3  # the sizes really differed

    async def prepared() -> list[str]:
        async with stack.planner.reader._pool.connection() as connection:
            return [row[0] for row in await (await connection.execute(PREPARED)).fetchall()]

    assert any("v.counter" in sql for sql in stack.runner.run(prepared()))  # prepared statements, not parsed anew


PREPARED = "SELECT statement FROM pg_prepared_statements"


def test_documents_the_planner_does_not_handle_are_never_planned(stack):
    for query in (
        "{ observations(limit: 3) { items { year indicator { code } } } }",  # a relation
        "{ observations(limit: 3) { items { year displayValue } } }",  # a resolver
        "{ observations(limit: 3) { items { ...Y } } } fragment Y on Observation { year }",
        "{ observations(limit: 3) { items { year @include(if: true) } } }",
        "{ observations(limit: 3) { items { year } } dataVersion }",  # two root fields
        "{ observations(limit: 3) { items { year members { code dimension { code } } } } }",
        '{ indicator(code: "missing.cases") { code } }',
        "{ __schema { queryType { name } } }",
    ):
        for _ in range(3):
            status, _, body, django = stack.post(query)
            assert django, query
        assert status == 200
        assert "errors" not in json.loads(body), body[:300]


def test_unknown_codes_and_bad_variables_get_strawberrys_errors(stack, settings):
    stack.post(VARIABLES, {"filter": {"indicators": ["missing.cases"]}, "order": None, "limit": 7, "offset": 0})
    for variables in (
        {"filter": {"indicators": ["missing.casez"]}, "order": None, "limit": 7, "offset": 0},
        {"filter": {"members": [{"dimension": "case_type", "member": "nope"}]}, "order": None, "limit": 7, "offset": 0},
        {"filter": None, "order": None, "limit": 0, "offset": 0},
        {"filter": None, "order": ["SIDEWAYS"], "limit": 7, "offset": 0},
        {"filter": None, "order": None, "limit": "seven", "offset": 0},
    ):
        status, headers, body, django = stack.post(VARIABLES, variables)
        assert django, variables
        settings.GRAPHQL_PLANNED = False
        assert stack.post(VARIABLES, variables)[:3] == (status, headers, body)
        settings.GRAPHQL_PLANNED = True
        assert json.loads(body)["errors"], variables
    unknown = {"filter": {"indicators": ["missing.casez"]}, "order": None, "limit": 7, "offset": 0}
    assert "missing.cases" in json.loads(stack.post(VARIABLES, unknown)[2])["errors"][0]["message"]  # the suggestion


def test_a_session_or_csrf_cookie_goes_to_django(stack):
    query = PAGE % ("missing.cases", 5)
    stack.post(query)
    assert not stack.post(query)[3]
    assert stack.post(query, headers=[(b"cookie", b"csrftoken=abc")])[3]
    status, _, _, django = stack.post(query, headers=[(b"cookie", b"sessionid=abc")])
    assert django
    assert status == 403  # Django's CSRF check


def test_with_read_replicas_reads_go_to_django_whose_router_sends_them_to_a_replica(stack, monkeypatch):
    query = PAGE % ("missing.cases", 5)
    stack.post(query)
    assert not stack.post(query)[3]
    monkeypatch.setattr(replicas, "aliases", lambda: ["replica1"])  # DATABASE_REPLICA_URLS named one
    assert stack.post(query)[3]


def test_the_time_budget_is_charged_and_a_spent_one_is_djangos_429(stack, settings):
    query = PAGE % ("missing.cases", 100)
    settings.GRAPHQL_RATE_BUDGET_MS = 10**9
    stack.post(query, client="10.1.2.3")
    request = HttpRequest()
    request.META["REMOTE_ADDR"] = "10.1.2.3"
    key = ratelimit._key(request, ratelimit._window()[0])
    spent = caches["default"].get(key)
    assert not stack.post(query, client="10.1.2.3")[3]
    assert caches["default"].get(key) > spent  # the planned answer was charged to its address
    settings.GRAPHQL_RATE_BUDGET_MS = 1
    status, headers, _, django = stack.post(query, client="10.1.2.3")
    assert (status, django) == (429, True)
    assert dict(headers)[b"retry-after"]
    assert stack.post(query, client="10.9.9.9")[0] == 200  # another address is not limited


def test_a_committed_write_is_seen_by_the_next_read(stack, settings, database_url):
    query = '{ observations(filter: {indicators: ["missing.cases"], year: 2021}, limit: 1000) '
    query += "{ items { id correctedValue } } }"
    stack.post(query)
    before = stack.post(query)
    assert not before[3]
    with psycopg.connect(database_url, autocommit=True) as conn:
        (observation_id,) = conn.execute(
            """SELECT o.id FROM stats_observation o JOIN stats_indicator i ON i.id = o.indicator_id
               WHERE i.code = 'missing.cases' AND o.year = 2021 AND o.is_preferred AND o.corrected_value IS NULL
               ORDER BY o.id LIMIT 1"""
        ).fetchone()
        conn.execute(
            "UPDATE stats_observation SET corrected_value = 7777, correction_reason = 'planned' WHERE id = %s",
            [observation_id],
        )
        try:
            after = stack.post(query)
            again = stack.post(query)
        finally:
            conn.execute("UPDATE stats_observation SET corrected_value = NULL, correction_reason = '' WHERE id = %s",
                         [observation_id])  # fmt: skip
    version = lambda answer: int(dict(answer[1])[b"x-data-version"])  # noqa: E731
    assert version(after) > version(before)
    assert {"id": str(observation_id), "correctedValue": "7777"} in json.loads(after[2])["data"]["observations"][
        "items"
    ]
    assert again[:3] == after[:3]
    assert not again[3]  # planned again, at the new version


def test_a_field_extension_or_permission_turns_planning_off_for_documents_using_it(stack, monkeypatch):
    from strawberry.permission import BasePermission

    from stats.graphql.types import Observation

    class Anyone(BasePermission):
        def has_permission(self, source, info, **kwargs) -> bool:
            return True

    year = next(f for f in Observation.__strawberry_definition__.fields if f.python_name == "year")
    with_year, without = LIST % 3, "{ observations(order: [YEAR], limit: 3) { items { value } } }"
    monkeypatch.setattr(year, "permission_classes", [Anyone])
    for query in (with_year, without):
        stack.post(query)
    assert stack.post(with_year)[3]
    assert not stack.post(without)[3]


def test_another_schema_extension_turns_planning_off(stack, monkeypatch):
    from strawberry.extensions import SchemaExtension

    from stats.graphql.schema import schema

    class Watching(SchemaExtension):
        pass

    monkeypatch.setattr(schema, "extensions", [*schema.extensions, Watching])
    planned.schema_plannable.cache_clear()
    try:
        query = PAGE % ("missing.cases", 5)
        stack.post(query)
        assert stack.post(query)[3]
    finally:
        planned.schema_plannable.cache_clear()


def test_with_the_response_cache_a_planned_answer_is_kept_and_served(stack, settings):
    settings.GRAPHQL_CACHE_MB = 64
    query = PAGE % ("missing.cases", 10)
    learned = stack.post(query)
    answer = stack.post(query, variables={"unused": 1})  # another body: a miss, planned
    hit = stack.post(query, variables={"unused": 1})
    assert learned[3]
    assert not answer[3]
    assert not hit[3]
    assert dict(answer[1])[b"x-cache"] == b"miss"
    assert dict(hit[1])[b"x-cache"] == b"hit"
    assert hit[2] == answer[2] == learned[2]
    settings.GRAPHQL_PLANNED = False
    unplanned = stack.post(query, variables={"unused": 2})
    assert dict(unplanned[1])[b"etag"] != dict(answer[1])[b"etag"]  # the key holds the body
    settings.GRAPHQL_PLANNED = True


def test_non_ascii_text_is_escaped_as_json_dumps_does():
    assert planned.ascii_json('{"a":"Café ☃ 😀 \x7f"}') == json.dumps({"a": "Café ☃ 😀 \x7f"}, separators=(",", ":"))


def test_a_planned_answer_unlike_strawberrys_leaves_the_document_to_django(stack, monkeypatch):
    query = PAGE % ("missing.cases", 5)
    monkeypatch.setattr(planned, "ascii_json", lambda text: text.replace('"year":', '"year": '))
    first, again = stack.post(query), stack.post(query)
    assert first[3]
    assert again[3]  # the comparison at learning found the difference: never planned
    assert first[:3] == again[:3]
    assert b'"year": ' not in again[2]
