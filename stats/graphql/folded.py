"""The data version read in the same round trip as a request's first query.

An uncached read needs the data version for its catalog (codes to ids, kept per version) and its
X-Data-Version header. Read on its own it is one more round trip per request (16 % of a count's
time, measured). When no cache key needs it before the answer (a request the response cache does
not keep), the view instead answers with the catalog of the version this process saw last, and
this execute wrapper puts the version's read in front of the request's first query, in the same
statement (psycopg's client-side cursors send it with the simple query protocol, which runs
several statements; the cursor then moves on to the query's own result).

After the answer, the view compares: the version read with the first query (or, if the answer ran
no query, read then) must be the one the answer was built with; if a write came in between, the
answer is dropped and built again with the new version. So no answer is labelled with a version
other than the one whose catalog built it.
"""

from __future__ import annotations

import psycopg
from django.db import DatabaseError

from stats.models.observations import DATA_VERSION_SQL


class FoldedVersion:
    """Execute wrapper: the data version read in front of the first plain SELECT."""

    def __init__(self) -> None:
        self.stamp: tuple[int, str] | None = None
        self.failed: DatabaseError | None = None
        self.tried = False

    def __call__(self, execute, sql, params, many, context):
        raw = getattr(context["cursor"], "cursor", None)
        if (
            self.tried
            or many
            or not isinstance(sql, str)
            or not sql.lstrip().upper().startswith("SELECT")
            or not isinstance(raw, psycopg.ClientCursor)  # named or server-binding cursors: one statement each
        ):
            return execute(sql, params, many, context)
        self.tried = True
        try:
            result = execute(DATA_VERSION_SQL + ";\n" + sql, params, many, context)
            with context["connection"].wrap_database_errors:
                row = raw.fetchone()
                raw.nextset()  # the query's own rows, for whoever executed it
        except DatabaseError as exc:
            self.failed = exc
            raise
        self.stamp = (row[0], row[1].isoformat()) if row else (0, "")
        return result
