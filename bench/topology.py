"""`python -m bench --topology [--seconds 60] [--users 20]`: the scaled-out service on real engines.

The published data in its own database (ncmec_load), a streaming replica of it (pg_basebackup from
the embedded PostgreSQL's wheel), a redis-server, and `serve` processes with REDIS_URL and
DATABASE_REPLICA_URLS set. First one web process alone, then two, under the locust dashboard mix
with one editor correcting a figure every second; during the two-process run the replica and Redis
are each stopped and started again. Readers also send a check query (the corrected figures with the
data version the answer claims); afterwards every check answer is compared with the corrections the
editor had made up to that version: an answer that differs is a stale read.

Prints JSON; exits 1 on a failed request, a stale read or a correction not visible at the end.
"""

from __future__ import annotations

import json
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path

from bench import engines, load, server


def stale_reads(corrections: Path, checks: Path) -> tuple[int, list[str]]:
    """(check answers compared, the stale ones): each figure must be its last correction at the answer's version."""
    made = [line.split() for line in corrections.read_text().splitlines()] if corrections.exists() else []
    made = [(int(version), observation, value) for observation, value, version in made if version != "?"]
    stale, compared = [], 0
    for line in checks.read_text().splitlines() if checks.exists() else []:
        version, *figures = line.split()
        compared += 1
        answered = dict(figure.split("=", 1) for figure in figures)
        expected: dict[str, str] = {}
        for made_at, observation, value in sorted(made):
            if made_at <= int(version):
                expected[observation] = value
        for observation, value in answered.items():
            if value != expected.get(observation, "None"):
                stale.append(
                    f"version {version}: observation {observation} is {value}, expected {expected.get(observation)}"
                )
    return compared, stale


def replica_lag(primary_url: str, samples: list[float], stop: threading.Event) -> None:
    """The replica's replay lag as the primary sees it (pg_stat_replication), every half second."""
    import psycopg

    while not stop.wait(0.5):
        try:
            with psycopg.connect(primary_url, autocommit=True, connect_timeout=2) as conn:
                row = conn.execute("SELECT EXTRACT(EPOCH FROM replay_lag) FROM pg_stat_replication").fetchone()
        except psycopg.Error:
            continue
        if row and row[0] is not None:
            samples.append(float(row[0]))


def outages(redis: engines.Redis, standby: engines.Replica, seconds: int, events: list[str]) -> None:
    """Stop and start the replica, then Redis, during the run."""
    started = time.monotonic()

    def at(fraction: float, what: str, action) -> None:
        time.sleep(max(0.0, started + seconds * fraction - time.monotonic()))
        action()
        events.append(f"{time.monotonic() - started:5.1f} s: {what}")

    at(0.15, "replica stopped", standby.stop)
    at(0.35, "replica started", standby.start)
    at(0.55, "redis stopped", redis.stop)
    at(0.75, "redis started", redis.start)


def run(seconds: int, users: int, single_seconds: int) -> dict:
    url, corrects = load.prepare()
    result: dict = {"users": users, "seconds": seconds}
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        workdir = Path(tmp)
        redis = stack.enter_context(engines.redis())
        standby = stack.enter_context(engines.replica())
        engines.wait_for(lambda: standby.replayed("ncmec_load", url), "the replica to replay the data")
        env = {"REDIS_URL": redis.url, "DATABASE_REPLICA_URLS": standby.url("ncmec_load")}
        logs = [workdir / "web1.log", workdir / "web2.log"]
        ports = [stack.enter_context(server.running(url, workers=1, log=log, **env)) for log in logs]
        hosts = [f"http://127.0.0.1:{port}" for port in ports]

        if single_seconds:
            single = load.locust(ports[0], users, single_seconds, load.DASHBOARD, workdir, corrects)
            result["one_process"] = single

        events: list[str] = []
        lags: list[float] = []
        stop = threading.Event()
        threads = [
            threading.Thread(target=outages, args=(redis, standby, seconds, events)),
            threading.Thread(target=replica_lag, args=(url, lags, stop)),
        ]
        for thread in threads:
            thread.start()
        checks, hits = workdir / "checks.txt", workdir / "hits.json"
        extra = {"LOAD_HOSTS": ",".join(hosts), "LOAD_CHECK": str(checks), "LOAD_HITS": str(hits)}
        result["two_processes"] = load.locust(ports[0], users, seconds, load.DASHBOARD, workdir, corrects, extra)
        threads[0].join()
        stop.set()
        threads[1].join()
        result["outages"] = events
        counts = json.loads(hits.read_text()) if hits.exists() else {}
        answered = counts.get("hit", 0) + counts.get("miss", 0)
        result["hit_ratio"] = round(counts.get("hit", 0) / answered, 3) if answered else None
        result["replica_lag_s"] = {"max": max(lags, default=None), "samples": len(lags)}
        result["check_reads"], stale = stale_reads(workdir / "corrections.txt", checks)
        result["stale_reads"], result["stale_examples"] = len(stale), stale[:5]
        result["corrections"], result["invisible_corrections"] = load.invisible_corrections(ports[1], workdir)
        result["log_lines"] = [
            line.split(": ", 1)[-1][:160]
            for log in logs
            for line in log.read_text().splitlines()
            if "WARNING ncmec.replicas" in line or "WARNING stats.graphql.cache" in line
        ][:10]
    return result


def main(seconds: int, users: int, single_seconds: int) -> None:
    reason = engines.have_tools()
    if reason:
        sys.exit(f"bench --topology: {reason}")
    result = run(seconds, users, single_seconds)
    print(json.dumps(result, indent=2))
    runs = [result["two_processes"], *([result["one_process"]] if "one_process" in result else [])]
    ok = all(r["failures"] == 0 and r["requests"] > 0 for r in runs) and result["stale_reads"] == 0
    sys.exit(0 if ok and result["corrections"] > 0 and not result["invisible_corrections"] else 1)
