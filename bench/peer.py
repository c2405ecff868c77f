"""`uv run python -m bench --peer postgraphile`: this project beside PostGraphile 5 on the same rows.

Starts PostGraphile 5 (bench/peer: npm, pinned by its lock file, with its own node 22 from npm)
on the bench's database and this project's server with its response cache off, one process
each, both on loopback. Four reads are sent to both, interleaved request by request: latency
(p50) from one client, then requests/s from 20 concurrent clients, next to the same rows fetched
with raw SQL. Every answer's rows are compared with the other server's and with the raw SQL's
(normalized to the same tuples) and the run stops when they differ. Writes its section of
docs/benchmarks.md and leaves the other sections as they are.

PostGraphile sees views over the stats tables in a schema of their own (`peer`, rebuilt on every
run) rather than the public schema, which also holds Django's users and sessions; a view this
simple costs nothing (the planner reads the table). An observation's breakdown is an array of
member ids, which PostGraphile cannot follow by itself: `peer.observation_members` is its
computed column, members in the same order as this project's `members` field.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from urllib.parse import parse_qs, urlsplit, urlunsplit

from bench import database, server

ROOT = Path(__file__).resolve().parent.parent
PEER_DIR = ROOT / "bench" / "peer"
REPORT = ROOT / "docs" / "benchmarks.md"
HEADING = "## Beside PostGraphile 5"
CLIENTS = 20

PEER_SCHEMA = """
DROP SCHEMA IF EXISTS peer CASCADE;
CREATE SCHEMA peer;
CREATE VIEW peer.member AS SELECT id, dimension_id, code, label, "order" FROM public.stats_member;
COMMENT ON VIEW peer.member IS E'@primaryKey id';
CREATE VIEW peer.observation AS
  SELECT id, indicator_id, source_id, year, period, member_ids, member_order, value, value_text,
         corrected_value, is_preferred
  FROM public.stats_observation;
COMMENT ON VIEW peer.observation IS E'@primaryKey id';
CREATE FUNCTION peer.observation_members(o peer.observation) RETURNS SETOF peer.member
  LANGUAGE sql STABLE AS $$
    SELECT m.* FROM peer.member m JOIN public.stats_dimension d ON d.id = m.dimension_id
    WHERE m.id = ANY (o.member_ids) ORDER BY d."order", d.code
  $$;
"""

MEMBER_CODES_SQL = """(SELECT array_agg(m.code ORDER BY d."order", d.code) FROM stats_member m
                       JOIN stats_dimension d ON d.id = m.dimension_id WHERE m.id = ANY (o.member_ids))"""


def _decimal(text: str | None) -> Decimal | None:
    return None if text is None else Decimal(text)


def _codes(members: list[dict]) -> tuple[str, ...]:
    return tuple(m["code"] for m in members)


@dataclass(frozen=True)
class Read:
    """One read, asked of both servers and of PostgreSQL, and how each answer becomes rows."""

    name: str
    ours: str  # this project's GraphQL document
    theirs: str  # PostGraphile's ({ind}: the indicator id)
    sql: str  # the raw SQL baseline (%(ind)s)
    our_rows: Callable[[dict], list]
    their_rows: Callable[[dict], list]
    sql_rows: Callable[[list], list]


READS = (
    Read(
        "page of 100 observations with members",
        '{ observations(filter: {indicators: ["bench.i00000"]}, limit: 100) '
        "{ items { id year value members { code } } } }",
        '{ allObservations(condition: {indicatorId: "{ind}", isPreferred: true}, '
        "orderBy: [YEAR_ASC, MEMBER_ORDER_ASC, ROW_ID_ASC], first: 100) "
        "{ nodes { rowId year value members { nodes { code } } } } }",
        f"""SELECT o.id, o.year, o.value, {MEMBER_CODES_SQL} FROM stats_observation o
           WHERE o.indicator_id = %(ind)s AND o.is_preferred ORDER BY o.year, o.member_order, o.id LIMIT 100""",
        lambda d: [
            (i["id"], i["year"], _decimal(i["value"]), _codes(i["members"])) for i in d["observations"]["items"]
        ],
        lambda d: [
            (n["rowId"], n["year"], _decimal(n["value"]), _codes(n["members"]["nodes"]))
            for n in d["allObservations"]["nodes"]
        ],
        lambda rows: [(str(i), y, v, tuple(c or ())) for i, y, v, c in rows],
    ),
    Read(
        "all 10,000 observations (year, value)",
        "{ observations(order: [YEAR], limit: 10000) { items { year value } } }",
        "{ allObservations(condition: {isPreferred: true}, orderBy: [YEAR_ASC, ROW_ID_ASC], first: 10000) "
        "{ nodes { year value } } }",
        "SELECT o.year, o.value FROM stats_observation o WHERE o.is_preferred ORDER BY o.year, o.id LIMIT 10000",
        lambda d: [(i["year"], _decimal(i["value"])) for i in d["observations"]["items"]],
        lambda d: [(n["year"], _decimal(n["value"])) for n in d["allObservations"]["nodes"]],
        lambda rows: [tuple(r) for r in rows],
    ),
    Read(
        "one indicator-year, 171 rows (member codes)",
        '{ observations(filter: {indicators: ["bench.i00000"], year: 2024}, limit: 1000) '
        "{ items { value members { code } } } }",
        '{ allObservations(condition: {indicatorId: "{ind}", year: 2024, isPreferred: true}, '
        "orderBy: [MEMBER_ORDER_ASC, ROW_ID_ASC]) { nodes { value members { nodes { code } } } } }",
        f"""SELECT o.value, {MEMBER_CODES_SQL} FROM stats_observation o
           WHERE o.indicator_id = %(ind)s AND o.year = 2024 AND o.is_preferred ORDER BY o.member_order, o.id""",
        lambda d: [(_decimal(i["value"]), _codes(i["members"])) for i in d["observations"]["items"]],
        lambda d: [(_decimal(n["value"]), _codes(n["members"]["nodes"])) for n in d["allObservations"]["nodes"]],
        lambda rows: [(v, tuple(c or ())) for v, c in rows],
    ),
    Read(
        "a count (one indicator's observations)",
        '{ observations(filter: {indicators: ["bench.i00000"]}) { totalCount } }',
        '{ allObservations(condition: {indicatorId: "{ind}", isPreferred: true}) { totalCount } }',
        "SELECT count(*) FROM stats_observation o WHERE o.indicator_id = %(ind)s AND o.is_preferred",
        lambda d: [d["observations"]["totalCount"]],
        lambda d: [d["allObservations"]["totalCount"]],
        lambda rows: [rows[0][0]],
    ),
)


class RowsDiffer(RuntimeError):
    """The two servers (or PostgreSQL) answered a read with different rows."""


# -- PostGraphile ---------------------------------------------------------------------------------
def missing_tools() -> str | None:
    """Why the peer cannot run here (no npm or node to install it with), or None."""
    if (PEER_DIR / "node_modules" / ".bin" / "node").exists():
        return None  # installed: it brought its own node
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            return f"`{tool}` is not on PATH, so PostGraphile (bench/peer) cannot be installed"
    return None


def install() -> None:
    """`npm ci` into bench/peer on first use (and again when the lock file changes)."""
    marker = PEER_DIR / "node_modules" / ".package-lock.json"
    lock = PEER_DIR / "package-lock.json"
    if marker.exists() and marker.stat().st_mtime >= lock.stat().st_mtime:
        return
    print("installing PostGraphile and node 22 into bench/peer/node_modules (npm ci)")
    subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=PEER_DIR, check=True, timeout=900)


def node_url(url: str) -> str:
    """The database URL as node-postgres reads it (a Unix socket directory needs a placeholder host)."""
    parts = urlsplit(url)
    if not parts.hostname and "host" in parse_qs(parts.query):
        user = f"{parts.username}@" if parts.username else ""
        parts = parts._replace(netloc=f"{user}localhost:{parts.port or 5432}")
    return urlunsplit(parts)


def _answers(port: int, query: str) -> bool:
    try:
        status, _, _ = post(http.client.HTTPConnection("127.0.0.1", port, timeout=5), query)
    except OSError:
        return False
    return status == 200


@contextmanager
def postgraphile(url: str) -> Iterator[int]:
    """PostGraphile 5 on a free loopback port, serving the `peer` schema of ``url``'s database."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(PEER_SCHEMA)
    port = server.free_port()
    node = PEER_DIR / "node_modules" / ".bin" / "node"
    cli = PEER_DIR / "node_modules" / "postgraphile" / "dist" / "cli-run.js"
    process = subprocess.Popen(
        [str(node), str(cli), "-C", "graphile.config.mjs"],
        cwd=PEER_DIR, env={**os.environ, "PEER_DATABASE_URL": node_url(url), "PEER_PORT": str(port)},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not _answers(port, "{ __typename }"):
            if process.poll() is not None:
                raise RuntimeError(f"PostGraphile exited:\n{process.stderr.read().decode()[-3000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"PostGraphile did not answer on port {port} within 120 s")
            time.sleep(0.5)
        yield port
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


# -- measuring ------------------------------------------------------------------------------------
def post(conn: http.client.HTTPConnection, query: str) -> tuple[int, dict, bytes]:
    conn.request("POST", "/graphql", body=json.dumps({"query": query}),
                 headers={"Content-Type": "application/json", "Accept": "application/json"})  # fmt: skip
    response = conn.getresponse()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()


def connect(port: int) -> http.client.HTTPConnection:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    conn.connect()
    conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return conn


def data(status: int, body: bytes, who: str, read: Read) -> dict:
    answer = json.loads(body)
    if status != 200 or answer.get("errors"):
        raise RuntimeError(f"{who} answered {read.name!r} with {status}: {body[:800]!r}")
    return answer["data"]


def interleaved(ours: int, theirs: int, read: Read, theirs_query: str, repeats: int, warmup: int = 3) -> dict:
    """p50 of each server, one request to each in turn (which goes first alternates); rows of each."""
    conns = {"ours": connect(ours), "theirs": connect(theirs)}
    queries = {"ours": read.ours, "theirs": theirs_query}
    timings: dict[str, list[float]] = {"ours": [], "theirs": []}
    bodies: dict[str, tuple[int, bytes]] = {}
    for i in range(warmup + repeats):
        for who in ("ours", "theirs") if i % 2 else ("theirs", "ours"):
            started = time.perf_counter()
            status, headers, body = post(conns[who], queries[who])
            elapsed = time.perf_counter() - started
            if who == "ours" and headers.get("x-cache") == "hit":
                raise RuntimeError("this project's server answered from its response cache: not an uncached run")
            if i >= warmup:
                timings[who].append(elapsed)
            bodies[who] = (status, body)
    for conn in conns.values():
        conn.close()
    return {
        "ours_ms": statistics.median(timings["ours"]) * 1000,
        "theirs_ms": statistics.median(timings["theirs"]) * 1000,
        "ours_rows": read.our_rows(data(*bodies["ours"], "this project", read)),
        "theirs_rows": read.their_rows(data(*bodies["theirs"], "PostGraphile", read)),
        "ours_bytes": len(bodies["ours"][1]),
        "theirs_bytes": len(bodies["theirs"][1]),
    }


def raw_sql(url: str, read: Read, params: dict, repeats: int) -> tuple[float, list]:
    """p50 of the raw SQL baseline (execute, fetch, json.dumps) and its rows."""
    import psycopg

    timings = []
    with psycopg.connect(url, autocommit=True) as conn:
        for i in range(repeats + 3):
            started = time.perf_counter()
            rows = conn.execute(read.sql, params, prepare=True).fetchall()
            json.dumps(rows, default=str)
            if i >= 3:
                timings.append(time.perf_counter() - started)
    return statistics.median(timings) * 1000, read.sql_rows(rows)


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = dict(line.lower().split(":", 1) for line in lines[1:] if ":" in line)
    if "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    elif "chunked" in headers.get("transfer-encoding", ""):
        chunks = []
        while size := int((await reader.readline()).strip(), 16):
            chunks.append((await reader.readexactly(size + 2))[:-2])
        await reader.readline()
        body = b"".join(chunks)
    else:
        raise RuntimeError(f"a response without a length: {head[:300]!r}")
    return status, body


async def _load(port: int, query: str, clients: int, warmup: float, seconds: float) -> dict:
    body = json.dumps({"query": query}).encode()
    request = (
        f"POST /graphql HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"Accept: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    start = time.perf_counter()
    window = (start + warmup, start + warmup + seconds)
    done: list[float] = []  # when each answer with data arrived
    failures: list[str] = []

    async def client() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            while time.perf_counter() < window[1]:
                writer.write(request)
                status, answer = await _read_response(reader)
                if status == 200 and not answer.startswith(b'{"errors"'):
                    done.append(time.perf_counter())
                else:
                    failures.append(f"{status} {answer[:200].decode(errors='replace')}")
        finally:
            writer.close()

    # Clients stop sending at the window's end and finish the request they are in.
    await asyncio.wait_for(asyncio.gather(*(client() for _ in range(clients))), timeout=warmup + seconds + 300)
    answered = sum(window[0] <= t < window[1] for t in done)
    return {"rps": answered / seconds, "failed": len(failures), "first_failure": failures[0] if failures else ""}


def throughput(port: int, query: str, seconds: float) -> dict:
    """Answers with data per second from CLIENTS concurrent keep-alive clients (asyncio, raw HTTP/1.1),
    counted after a warm-up; failed requests (errors, 503) are counted apart and not as answers."""
    return asyncio.run(_load(port, query, CLIENTS, warmup=min(2.0, seconds / 2), seconds=seconds))


def load_average() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def same_rows(read: Read, ours: list, theirs: list, sql: list) -> None:
    for label, rows in (("PostGraphile", theirs), ("raw SQL", sql)):
        if rows != ours:
            diff = next((i for i, (a, b) in enumerate(zip(ours, rows, strict=False)) if a != b), None)
            where = f"first difference at row {diff}: {ours[diff]!r} vs {rows[diff]!r}" if diff is not None else ""
            raise RowsDiffer(
                f"{read.name}: this project answered {len(ours)} rows, {label} {len(rows)}; {where}".rstrip("; ")
            )


def compare(url: str, repeats: int, seconds: float) -> dict:
    """Measure every read on both servers; raise RowsDiffer when any answer's rows differ."""
    import psycopg

    with psycopg.connect(url) as conn:
        ind = conn.execute("SELECT id FROM stats_indicator WHERE code = 'bench.i00000'").fetchone()[0]
    params = {"ind": ind}
    results = {"started": datetime.now(UTC), "load_before": load_average(), "reads": {}}
    # One process each: one uvicorn worker here, one node process there. GRAPHQL_CACHE_MB=0 turns off the
    # response cache and with it the fast path in front of Django, so every request is executed.
    with server.running(url, workers=1, GRAPHQL_CACHE_MB="0") as ours, postgraphile(url) as theirs:
        theirs_queries = {read.name: read.theirs.replace("{ind}", str(ind)) for read in READS}
        for read in READS:
            measured = interleaved(ours, theirs, read, theirs_queries[read.name], repeats)
            sql_ms, sql_rows = raw_sql(url, read, params, repeats)
            same_rows(read, measured["ours_rows"], measured["theirs_rows"], sql_rows)
            measured.update(sql_ms=sql_ms, rows=len(sql_rows), load=load_average())
            print(
                f"{read.name}: raw SQL {sql_ms:.1f} ms, PostGraphile {measured['theirs_ms']:.1f} ms, "
                f"this project {measured['ours_ms']:.1f} ms ({measured['ours_ms'] / measured['theirs_ms']:.1f}x); "
                f"rows equal ({len(sql_rows)}); load {measured['load']}",
                flush=True,
            )
            results["reads"][read.name] = measured
        for read in READS:
            measured = results["reads"][read.name]
            for who, port, query in (("ours", ours, read.ours), ("theirs", theirs, theirs_queries[read.name])):
                loaded = throughput(port, query, seconds)
                measured[f"{who}_rps"], measured[f"{who}_failed"] = loaded["rps"], loaded["failed"]
                if loaded["failed"]:
                    print(f"  {loaded['failed']} failed requests, the first: {loaded['first_failure']}", flush=True)
            measured["load_rps"] = load_average()
            print(
                f"{read.name}: {measured['ours_rps']:.0f} / {measured['theirs_rps']:.0f} req/s at {CLIENTS} clients "
                f"(this project / PostGraphile), failed {measured['ours_failed']} / {measured['theirs_failed']}; "
                f"load {measured['load_rps']}",
                flush=True,
            )
    results["load_after"] = load_average()
    return results


# -- the report -----------------------------------------------------------------------------------
def section(results: dict, command: str, repeats: int, seconds: float) -> list[str]:
    reads = results["reads"]
    lines = [
        HEADING,
        "",
        f"Measured {results['started']:%Y-%m-%d %H:%M} UTC by `{command}` on {platform.machine()} with "
        f"{os.cpu_count()} cores shared with other work (load average {results['load_before']} before, "
        f"{results['load_after']} after; 1, 5 and 15 minutes), so the figures are noisy; compare the ratios "
        "more than the milliseconds. PostGraphile 5 (bench/peer, node 22) and this project's server, one "
        "process each, on the bench database; this project with `GRAPHQL_CACHE_MB=0` (no response cache, "
        "so no fast path: every request executed; a cache hit fails the run). Requests alternate between the "
        f"two servers; p50 of {repeats} each after 3 warm-up requests, over HTTP keep-alive on loopback. "
        f"Requests/s: answers with data per second from {CLIENTS} concurrent keep-alive clients (asyncio) over "
        f"{seconds:g} s after a warm-up; *failed* counts the requests answered otherwise (this project answers "
        "503 when a request waits longer than `DB_POOL_TIMEOUT` for one of its `DB_POOL_SIZE` connections). "
        "Raw SQL: the same rows with psycopg (prepared), fetched and encoded with json.dumps. Every answer's "
        "rows were compared with the other server's and with the raw SQL's, and were equal.",
        "",
        f"| query | rows | raw SQL | PostGraphile p50 | this project uncached p50 | ratio | "
        f"req/s at {CLIENTS} clients (project / PostGraphile) | failed under load | load average |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, r in reads.items():
        lines.append(
            f"| {name} | {r['rows']:,} | {r['sql_ms']:.1f} ms | {r['theirs_ms']:.1f} ms | {r['ours_ms']:.1f} ms | "
            f"{r['ours_ms'] / r['theirs_ms']:.1f}x | {r['ours_rps']:.0f} / {r['theirs_rps']:.0f} | "
            f"{r['ours_failed']} / {r['theirs_failed']} | {r['load_rps']} |"
        )
    lines += ["", "Targets (issue 17):", ""]
    for name, r in reads.items():
        limit = 1.5 if name.startswith("all ") else 1.0
        ratio = r["ours_ms"] / r["theirs_ms"]
        p50 = "**met**" if ratio <= limit else "**not met**"
        rps = "**met**" if r["ours_rps"] >= r["theirs_rps"] else "**not met**"
        lines.append(
            f"- {name}: uncached p50 {ratio:.1f}x PostGraphile's (target ≤ {limit:g}x): {p50}; "
            f"{r['ours_rps']:.0f} req/s vs {r['theirs_rps']:.0f} (target ≥ PostGraphile's): {rps}"
        )
    lines += [
        "",
        "The documents (PostGraphile's `peer` schema: views over the stats tables and "
        "`peer.observation_members`, see bench/peer.py):",
        "",
    ]
    for read in READS:
        lines += [f"- {read.name}: `{read.ours}` / `{read.theirs}`"]
    return lines


def write_section(lines: list[str], path: Path = REPORT) -> None:
    """Put this section in place of its previous text (or at the end), leaving every other section as it is."""
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    before, found, after = text.partition(HEADING + "\n")
    if found:
        rest = after.split("\n## ", 1)
        after = "\n## " + rest[1] if len(rest) == 2 else ""
        text = before + "\n".join(lines) + "\n" + after
    else:
        text = text.rstrip("\n") + "\n\n" + "\n".join(lines) + "\n"
    path.write_text(text)


def main(observations: int, quick: bool, output: Path = REPORT) -> None:
    """The comparison alone: build or reuse the bench database, measure, write the section."""
    why = missing_tools()
    if why:
        print(f"skipped: {why}")
        return
    install()
    url = database.configure()
    import django

    django.setup()
    from django.core.management import call_command

    from bench import warehouse

    call_command("migrate", verbosity=0)
    warehouse.build(observations, log=print)
    repeats, seconds = (10, 3.0) if quick else (30, 8.0)
    results = compare(url, repeats, seconds)
    command = "uv run python -m bench --peer postgraphile" + (" --quick" if quick else "")
    if observations != 10_000:
        command += f" --observations {observations}"
    write_section(section(results, command, repeats, seconds), output)
    print(f"wrote the section {HEADING!r} of {output}")
