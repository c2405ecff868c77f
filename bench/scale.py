"""`python -m bench.scale N`: the scaled queries on a synthetic warehouse of N observations.

Runs in its own process and database (ncmec_bench_N, kept for the next run), so the main
benchmark's database and Django connection stay as they are. Prints JSON: each query's HTTP
timings (uncached) and the EXPLAIN ANALYZE of its SQL.
"""

from __future__ import annotations

import json
import sys
import time


def main(observations: int, repeats: int) -> dict:
    from bench import database, server

    url = database.configure(f"ncmec_bench_{observations}")
    import django

    django.setup()
    from django.core.management import call_command

    from bench import warehouse
    from bench.__main__ import QUERIES, SCALED, explain, http, scenario_params

    call_command("migrate", verbosity=0)
    started = time.perf_counter()
    warehouse.build(observations, log=lambda line: print(line, file=sys.stderr))
    built = time.perf_counter() - started
    params = scenario_params()
    result = {"observations": observations, "build_seconds": built, "queries": {}}
    with server.running(url, GRAPHQL_CACHE_MB="0") as port:
        for name in SCALED:
            query, sql = QUERIES[name]
            timings = http(port, "/graphql", json.dumps({"query": query}).encode(), repeats)
            result["queries"][name] = {**timings, "plan": explain(sql, params)}
    return result


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 20)))
