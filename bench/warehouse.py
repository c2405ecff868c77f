"""A synthetic warehouse of N observations built with the real models and constraints.

Shape: indicators × years × (state × case status, with printed row, column and grand totals),
as the reports print their state tables; one impact report per year. Indicators are added as
N grows (171 observations per indicator and year, 35 years).
"""

from __future__ import annotations

import math
import time

YEARS = range(1990, 2025)
STATES = [
    "AL", "AK", "AZ", "AR", "CA", "CO", "CT", "DE", "DC", "FL", "GA", "HI", "ID", "IL", "IN", "IA", "KS", "KY",
    "LA", "ME", "MD", "MA", "MI", "MN", "MS", "MO", "MT", "NE", "NV", "NH", "NJ", "NM", "NY", "NC", "ND", "OH",
    "OK", "OR", "PA", "RI", "SC", "SD", "TN", "TX", "UT", "VT", "VA", "WA", "WV", "WI", "WY", "PR", "GU", "VI",
    "INTL", "UNK",
]  # fmt: skip
STATUSES = ["active", "resolved"]
PER_INDICATOR_YEAR = (len(STATES) + 1) * (len(STATUSES) + 1)  # cells plus totals


def build(observations: int, log=print) -> dict:
    """Create the catalog and ``observations`` rows (idempotent for the same N)."""
    from django.db import connection, transaction

    from stats.services.catalog import dimension_upsert, indicator_upsert, member_upsert, source_upsert, topic_upsert

    started = time.perf_counter()
    indicators = max(1, math.ceil(observations / (PER_INDICATOR_YEAR * len(YEARS))))
    with transaction.atomic():
        topic_upsert(code="bench", name="Benchmark")
        state = dimension_upsert(code="bench_state", name="State")
        for order, code in enumerate(STATES):
            member_upsert(dimension=state, code=code, label=f"State {code}", order=order)
        status = dimension_upsert(code="bench_status", name="Case status")
        for order, code in enumerate(STATUSES):
            member_upsert(dimension=status, code=code, label=code.title(), order=order)
        for i in range(indicators):
            indicator_upsert(code=f"bench.i{i:05d}", name=f"Benchmark indicator {i}", unit="count", topic="bench")
        for year in YEARS:
            source_upsert(
                slug=f"bench-{year}", title=f"Benchmark report {year}", kind="impact_report", edition=year,
                document=f"bench-{year}.txt",
            )  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM stats_observation o JOIN stats_indicator i ON i.id = o.indicator_id "
                       "WHERE i.code LIKE 'bench.%%'")  # fmt: skip
        existing = cursor.fetchone()[0]
    if existing != observations:
        _fill(observations, state.id, status.id, log)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE stats_observation")
    log(f"synthetic warehouse: {observations:,} observations, {indicators} indicators "
        f"({time.perf_counter() - started:.1f} s)")  # fmt: skip
    return {"indicators": indicators, "state_dimension": state.id, "status_dimension": status.id}


def _fill(observations: int, state_id: int, status_id: int, log) -> None:
    from django.db import connection, transaction

    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM stats_observation WHERE indicator_id IN "
                       "(SELECT id FROM stats_indicator WHERE code LIKE 'bench.%%')")  # fmt: skip
        cursor.execute("SELECT id FROM stats_indicator WHERE code LIKE 'bench.%%' ORDER BY code")
        indicator_ids = [r[0] for r in cursor.fetchall()]
    remaining = observations
    chunk = 50  # indicators per statement: about 300,000 rows
    for start in range(0, len(indicator_ids), chunk):
        ids = indicator_ids[start : start + chunk]
        limit = min(remaining, len(ids) * PER_INDICATOR_YEAR * len(YEARS))
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                """
                WITH ind AS (SELECT unnest(%(ids)s::bigint[]) AS id),
                     yrs AS (SELECT s.edition AS y, s.id AS source_id FROM stats_source s WHERE s.slug LIKE 'bench-%%'),
                     st AS (SELECT id, "order" FROM stats_member WHERE dimension_id = %(state)s
                            UNION ALL SELECT NULL, 999),
                     cs AS (SELECT id, "order" FROM stats_member WHERE dimension_id = %(status)s
                            UNION ALL SELECT NULL, 999)
                INSERT INTO stats_observation (indicator_id, source_id, year, period, member_ids, dimension_ids, value,
                    value_text, qualifier, quote, "table", flag, note, correction_reason, is_preferred, version,
                    created_at, updated_at)
                SELECT ind.id, yrs.source_id, yrs.y, 'annual', array_remove(ARRAY[st.id, cs.id], NULL), '{}',
                       v, to_char(v, 'FM999,999,999'), 'exact', 'benchmark row', 'Benchmark table', '', '', '',
                       false, 1, now(), now()
                FROM ind, yrs, st, cs,
                     LATERAL (SELECT (abs(hashint8(ind.id * 1000003 + yrs.y * 1009 + coalesce(st.id, 0) * 7
                                                     + coalesce(cs.id, 0))) %% 5000)::numeric AS v) val
                ORDER BY ind.id, yrs.y, st."order", cs."order"
                LIMIT %(limit)s
                """,
                {"ids": ids, "state": state_id, "status": status_id, "limit": limit},
            )
        remaining -= limit
        log(f"  inserted {observations - remaining:,} / {observations:,}")
        if remaining <= 0:
            break
