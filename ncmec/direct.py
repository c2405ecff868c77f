"""psycopg connections beside Django's own, made from the same settings (sslmode, the socket, the
password): the response cache's async pool and the parallel export's readers."""

from __future__ import annotations

from django.db import connections


def connection_kwargs(application_name: str, alias: str = "default") -> dict:
    """psycopg's connect arguments for ``alias``, exactly as Django builds them, in autocommit."""
    params = connections[alias].get_connection_params()
    for django_only in ("cursor_factory", "context"):
        params.pop(django_only, None)
    return {**params, "autocommit": True, "application_name": application_name}
