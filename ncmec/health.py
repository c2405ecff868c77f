"""Probes for the proxy and the orchestrator.

``/healthz``: the process answers (liveness: restart it when this fails). ``/readyz``: it can serve
(readiness: send it traffic) — the primary answers, every migration is applied; replicas and the
shared cache are reported, and their loss only degrades (reads then go to the primary, answers
come from the database), so it does not take the process out of rotation.
"""

from __future__ import annotations

from django.db import DatabaseError, connections
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from ncmec import replicas
from stats.graphql import cache

_migrated = False  # once true, true until the process ends (migrations only move forward)


def migrations_applied() -> bool:
    global _migrated
    if not _migrated:
        connection = connections[replicas.PRIMARY]
        executor = MigrationExecutor(connection)
        _migrated = not executor.migration_plan(executor.loader.graph.leaf_nodes())
    return _migrated


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    checks: dict[str, str] = {}
    try:
        with connections[replicas.PRIMARY].cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
        checks["migrations"] = "ok" if migrations_applied() else "pending"
    except DatabaseError as exc:
        connections[replicas.PRIMARY].close()
        checks["database"] = f"unreachable: {str(exc).strip().splitlines()[0] if str(exc).strip() else exc}"[:200]
    for alias in replicas.aliases():
        checks[alias] = "ok" if replicas.is_healthy(alias) else "degraded: reads go to the primary"
    shared = cache.responses.shared.ping()
    if shared is not None:
        checks["cache"] = "ok" if shared else "degraded: answers come from the database"
    ready = checks.get("database") == "ok" and checks.get("migrations") == "ok"
    return JsonResponse({"status": "ready" if ready else "not ready", "checks": checks}, status=200 if ready else 503)
