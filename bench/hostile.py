"""Hostile requests against the real server: what each costs and what it answers.

`uv run python -m bench.hostile --port 8000 [CASE ...]` sends each case of issue #16 to a running
`serve` and prints one markdown row per case: HTTP status, seconds, response bytes, the growth of
the largest worker's resident memory (from /proc), and the start of the answer. The same cases
drive tests/graphql/test_hostile.py, which asserts the statuses, that the workers keep
answering, stay within 50 MB and log nothing at ERROR.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from urllib.parse import quote

import psutil

MB = 1024 * 1024
QUERY_ROOT = "Query"


def post(payload: object) -> bytes:
    return json.dumps(payload).encode()


def fragment_fan_out(n: int, cycle: bool = False) -> bytes:
    """`{ ...F0 }`, each fragment spreading the next twice: 2**n paths for a walker that does not memoize."""
    fragments = " ".join(f"fragment F{i} on {QUERY_ROOT} {{ ...F{i + 1} ...F{i + 1} }}" for i in range(n))
    last = f"fragment F{n} on {QUERY_ROOT} {{ {'...F0' if cycle else 'dataVersion'} }}"
    return post({"query": f"query {{ ...F0 }} {fragments} {last}"})


def nested(depth: int) -> str:
    """A JSON list nested ``depth`` levels (as text: json.dumps itself would overflow the stack)."""
    return "[" * depth + '"x"' + "]" * depth


AGGREGATE = 'query($years: [Int!]) { aggregate(indicator: "missing.cases", over: "case_type", years: $years) { sum } }'
BREAKDOWN = "query($b: [String!]) { observations(filter: {breakdown: $b}) { totalCount } }"
INDICATOR = "query($code: String!) { indicator(code: $code) { name } }"
SEARCH = "query($s: String) { indicators(search: $s) { code } }"


@dataclass(frozen=True)
class Case:
    name: str
    what: str
    bodies: Callable[[], Iterator[bytes]]  # one or more request bodies (POST), or query strings (GET)
    expect: frozenset[int] = frozenset({400})
    method: str = "POST"
    content_type: str = "application/json"
    hides: tuple[str, ...] = field(default=())  # text the answer must not contain


def one(body: Callable[[], bytes]) -> Callable[[], Iterator[bytes]]:
    """A case of one request, its body built when sent (some are megabytes)."""
    return lambda: iter([body()])


CASES = [
    Case("fragments-16", "fragment fan-out, n = 16 (~600 bytes)", one(lambda: fragment_fan_out(16))),
    Case("fragments-20", "fragment fan-out, n = 20 (~800 bytes)", one(lambda: fragment_fan_out(20))),
    Case(
        "fragments-cycle-20", "fragment fan-out closing a cycle, n = 20", one(lambda: fragment_fan_out(20, cycle=True))
    ),
    Case(
        "names-1mb",
        "1 MB document of repeated names",
        one(lambda: post({"query": "{ " + "dataVersion " * (MB // 12) + "}"})),
    ),
    Case(
        "names-5mb",
        "5 MB document of repeated names",
        one(lambda: post({"query": "{ " + "dataVersion " * (5 * MB // 12) + "}"})),
    ),
    Case(
        "directives-8000",
        "8,000 directives on one field",
        one(lambda: post({"query": "{ dataVersion " + "@a " * 8000 + "}"})),
    ),
    Case(
        "documents-60x1mb",
        "60 distinct valid 1 MB documents (a comment and one field)",
        lambda: (post({"query": f"# {i}{'x' * MB}\n{{ dataVersion }}"}) for i in range(60)),
    ),
    Case(
        "documents-60x30kb",
        "60 distinct valid 30 KB documents (answered, never kept)",
        lambda: (post({"query": f"# {i}{'x' * 30_000}\n{{ dataVersion }}"}) for i in range(60)),
        expect=frozenset({200}),
    ),
    Case(
        "repeated-field-1900",
        "one field selected 1,900 times (pairwise overlap checks)",
        one(lambda: post({"query": "{ " + "dataVersion " * 1900 + "}"})),
    ),
    Case(
        "aggregate-years-200000",
        "`aggregate(years:)` with 200,000 integers (variables)",
        one(lambda: post({"query": AGGREGATE, "variables": {"years": list(range(200_000))}})),
    ),
    Case(
        "aggregate-years-5000",
        "`aggregate(years:)` with 5,000 integers (under the body limit)",
        one(lambda: post({"query": AGGREGATE, "variables": {"years": [2020] * 5000}})),
    ),
    Case(
        "breakdown-100000",
        "`filter.breakdown` with 100,000 items (variables)",
        one(lambda: post({"query": BREAKDOWN, "variables": {"b": ["state"] * 100_000}})),
    ),
    Case(
        "breakdown-5000",
        "`filter.breakdown` with 5,000 items (under the body limit)",
        one(lambda: post({"query": BREAKDOWN, "variables": {"b": ["state"] * 5000}})),
    ),
    Case("body-string", 'JSON body `"hello"`', one(lambda: b'"hello"')),
    Case("body-number", "JSON body `12`", one(lambda: b"12")),
    Case("body-null", "JSON body `null`", one(lambda: b"null")),
    Case("body-invalid-utf8", "invalid UTF-8 in the body", one(lambda: b'{"query": "{ dataVersion }\xff\xfe"}')),
    Case(
        "variables-nested-5000",
        "variables nested 5,000 levels",
        one(
            lambda: b'{"query": "query($v: [String]) { dataVersion }", "variables": {"v": %s}}' % nested(5000).encode()
        ),
    ),
    Case(
        "variables-nested-500",
        "variables nested 500 levels (under the recursion limit)",
        one(lambda: b'{"query": "%s", "variables": {"code": %s}}' % (INDICATOR.encode(), nested(500).encode())),
    ),
    Case(
        "operation-name-number",
        "`operationName` that is a number",
        one(lambda: post({"query": "{ dataVersion }", "operationName": 5})),
    ),
    Case(
        "string-nul",
        "a NUL byte in a string argument (variables)",
        one(lambda: post({"query": SEARCH, "variables": {"s": "missing\u0000cases"}})),
    ),
    Case(
        "string-nul-literal",
        "a NUL byte in a string argument (document)",
        one(lambda: post({"query": '{ indicators(search: "missing\\u0000cases") { code } }'})),
    ),
    Case(
        "string-surrogate",
        "a lone surrogate in a string argument",
        one(lambda: post({"query": SEARCH, "variables": {"s": "missing\ud800"}})),
    ),
    Case(
        "unknown-fragment",
        "a spread of an undefined fragment",
        one(lambda: post({"query": "{ ...Nope }"})),
        expect=frozenset({200}),
    ),
    Case(
        "suggest-argument",
        "a misspelt argument",
        one(lambda: post({"query": '{ indicator(cod: "x") { name } }'})),
        expect=frozenset({200}),
        hides=("Did you mean", "did you mean"),
    ),
    Case(
        "suggest-enum",
        "a misspelt enum value",
        one(lambda: post({"query": "{ observations(order: [YEA]) { totalCount } }"})),
        expect=frozenset({200}),
        hides=("Did you mean", "did you mean"),
    ),
    Case(
        "suggest-enum-variable",
        "a misspelt enum value in variables",
        one(
            lambda: post(
                {
                    "query": "query($o: [ObservationOrder!]) { observations(order: $o) { totalCount } }",
                    "variables": {"o": ["YEA"]},
                }
            )
        ),
        expect=frozenset({200}),
        hides=("Did you mean", "did you mean"),
    ),
    Case(
        "suggest-type",
        "a misspelt type",
        one(lambda: post({"query": "query($f: ObservationFiltr) { dataVersion }"})),
        expect=frozenset({200}),
        hides=("Did you mean", "did you mean"),
    ),
    Case(
        "suggest-input-field",
        "a misspelt input field",
        one(lambda: post({"query": '{ observations(filter: {indicatr: ["x"]}) { totalCount } }'})),
        expect=frozenset({200}),
        hides=("Did you mean", "did you mean"),
    ),
    Case(
        "echo-10mb",
        "a 10 MB string argument",
        one(lambda: post({"query": '{ indicator(code: "' + "y" * (10 * MB) + '") { name } }'})),
        hides=("y" * 101,),
    ),
    Case(
        "echo-30kb",
        "a 30 KB string argument (under the document limit)",
        one(lambda: post({"query": '{ indicator(code: "' + "y" * 30_000 + '") { name } }'})),
        expect=frozenset({200}),
        hides=("y" * 101,),
    ),
    Case(
        "echo-30kb-int",
        "a 30 KB string where an Int belongs",
        one(lambda: post({"query": '{ coverage(year: "' + "y" * 30_000 + '") { year } }'})),
        expect=frozenset({200}),
        hides=("y" * 101,),
    ),
    Case(
        "echo-100kb",
        "a 100 KB string argument (under the body limit, over the document limit)",
        one(lambda: post({"query": '{ indicator(code: "' + "y" * 100_000 + '") { name } }'})),
        hides=("y" * 101,),
    ),
    Case(
        "get-100kb",
        "a GET whose query string is 100 KB",
        one(lambda: b"query=" + b"%7B%20" + b"dataVersion%20" * 7000 + b"%7D"),
        method="GET",
        expect=frozenset({400}),
    ),
]
CASES.append(
    Case(
        "get-fragments-20",
        "fragment fan-out, n = 20, over GET",
        one(lambda: b"query=" + quote(json.loads(fragment_fan_out(20))["query"]).encode()),
        method="GET",
    )
)
BY_NAME = {case.name: case for case in CASES}
PROBE = post({"query": "{ dataVersion }"})


@dataclass
class Answer:
    status: int  # 0: the connection failed
    seconds: float
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)  # names in lower case


def send(port: int, case: Case, body: bytes, timeout: float = 120) -> Answer:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    started = time.perf_counter()
    try:
        if case.method == "GET":
            connection.request("GET", "/graphql?" + body.decode(), headers={"Accept": "application/json"})
        else:
            headers = {"Content-Type": case.content_type, "Accept": "application/json"}
            connection.request(case.method, "/graphql", body=body, headers=headers)
        response = connection.getresponse()
        content = response.read()
        return Answer(
            response.status, time.perf_counter() - started, content, {k.lower(): v for k, v in response.getheaders()}
        )
    except (ConnectionError, http.client.HTTPException, TimeoutError) as exc:
        return Answer(0, time.perf_counter() - started, repr(exc).encode())
    finally:
        connection.close()


def probe(port: int) -> int:
    return send(port, Case("probe", "", one(lambda: PROBE)), PROBE, timeout=30).status


def workers(server_pid: int) -> list[psutil.Process]:
    """uvicorn's worker processes under `serve` (or the server itself when it has none)."""
    server = psutil.Process(server_pid)
    found = [p for p in server.children(recursive=True) if "spawn_main" in " ".join(p.cmdline())]
    return found or [server]


def rss(processes: list[psutil.Process]) -> dict[int, int]:
    """Resident set size of each live process, in bytes (VmRSS from /proc)."""
    sizes = {}
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            sizes[process.pid] = process.memory_info().rss
    return sizes


@dataclass
class Measured:
    case: Case
    statuses: list[int]
    seconds: float  # the slowest request of the case
    size: int
    growth_mb: float  # the largest growth of one worker
    alive: bool
    answer: str


def measure(port: int, server_pid: int, case: Case) -> Measured:
    processes = workers(server_pid)
    before = rss(processes)
    answers = [send(port, case, body) for body in case.bodies()]
    alive = probe(port) == 200
    after = rss(processes)
    growth = max((after[pid] - before[pid] for pid in before if pid in after), default=0) / MB
    last = answers[-1]
    return Measured(
        case, [a.status for a in answers], max(a.seconds for a in answers), len(last.body), growth, alive,
        last.body[:160].decode("utf-8", "replace"),
    )  # fmt: skip


def server_pid_on(port: int) -> int:
    for process in psutil.process_iter(["cmdline"]):
        cmdline = process.info["cmdline"] or []
        if "serve" in cmdline and "--port" in cmdline and str(port) in cmdline:
            return process.pid
    raise SystemExit(f"no `manage.py serve --port {port}` process found")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("cases", nargs="*", help=f"case names (default all): {', '.join(BY_NAME)}")
    args = parser.parse_args()
    pid = server_pid_on(args.port)
    for _ in range(8):  # every worker has answered once: its first request's imports are not counted
        probe(args.port)
    print("| case | status | slowest s | answer bytes | worker growth MB | still answers | answer |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name in args.cases or BY_NAME:
        m = measure(args.port, pid, BY_NAME[name])
        statuses = ",".join(sorted({str(s) for s in m.statuses}))
        answer = m.answer.replace("|", "\\|").replace("\n", " ")[:100]
        print(
            f"| {name} | {statuses} | {m.seconds:.3f} | {m.size} | {m.growth_mb:.0f} | {m.alive} | `{answer}` |",
            flush=True,
        )


if __name__ == "__main__":
    main()
