"""Latency of one request, measured from a separate process over real HTTP (keep-alive).

`python -m bench.client HOST PORT PATH METHOD BODY_FILE REPEATS` prints JSON: p50/p95 in ms,
requests/s, response size.
"""

from __future__ import annotations

import http.client
import json
import socket
import statistics
import sys
import time


def run(host: str, port: int, path: str, method: str, body: bytes | None, repeats: int, warmup: int = 3) -> dict:
    conn = http.client.HTTPConnection(host, port, timeout=120)
    conn.connect()
    conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no Nagle delay between headers and body
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    timings = []
    size = 0
    started = time.perf_counter()
    for i in range(warmup + repeats):
        t0 = time.perf_counter()
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        data = response.read()
        elapsed = time.perf_counter() - t0
        if response.status != 200:
            raise RuntimeError(f"{method} {path} answered {response.status}: {data[:500]!r}")
        if i >= warmup:
            timings.append(elapsed)
        size = len(data)
        if i == warmup - 1:
            started = time.perf_counter()
    total = time.perf_counter() - started
    timings.sort()
    return {
        "p50_ms": statistics.median(timings) * 1000,
        "p95_ms": timings[min(len(timings) - 1, int(len(timings) * 0.95))] * 1000,
        "rps": repeats / total,
        "bytes": size,
    }


if __name__ == "__main__":
    host, port, path, method, body_file, repeats = sys.argv[1:7]
    body = open(body_file, "rb").read() if body_file != "-" else None  # noqa: SIM115
    print(json.dumps(run(host, int(port), path, method, body, int(repeats))))
