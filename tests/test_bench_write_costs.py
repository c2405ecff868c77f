import pytest
from django.db import connection

from bench import write_costs
from bench.imports import FLOOR_TABLE


@pytest.fixture
def floor_rows(transactional_db):
    """A floor table of 40 rows of the observations' shape (what bench.imports leaves after its floor COPY)."""
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TABLE {FLOOR_TABLE} (LIKE stats_observation INCLUDING DEFAULTS INCLUDING IDENTITY)")
        cursor.execute(
            f"INSERT INTO {FLOOR_TABLE} (indicator_id, source_id, year, member_ids, dimension_ids, quote, value, "
            "value_text, is_preferred) SELECT 1, 1, 1990 + g, ARRAY[g], ARRAY[1], 'printed', g, g::text, true "
            "FROM generate_series(1, 40) g"
        )
    yield 40
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE {FLOOR_TABLE}")


def test_every_index_of_the_observations_and_the_history_record_is_measured_and_nothing_is_left(floor_rows):
    costs = write_costs.measure()

    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'stats_observation'")
        indexes = {name for (name,) in cursor.fetchall()}
        cursor.execute("SELECT to_regclass(%s)", [write_costs.TARGET])
        left = cursor.fetchone()[0]
    assert costs["rows"] == floor_rows
    assert set(costs["indexes"]) == indexes
    assert set(write_costs.REQUIRED_INDEXES) <= indexes
    assert all(seconds >= 0 for seconds in costs["indexes"].values())
    assert costs["bare"] > 0
    assert costs["history"] > 0
    assert left is None  # every insert was rolled back, its table with it


def test_the_ceiling_is_the_floor_over_the_floor_and_the_parts_every_design_keeps():
    costs = {"rows": 1_000_000, "bare": 3.0, "history": 4.0,
             "indexes": {"stats_observation_pkey": 1.0, "observation_fact_unique_per_source": 2.0,
                         "observation_one_preferred_per_fact": 3.0, "observation_year": 50.0}}  # fmt: skip

    assert write_costs.ceiling(costs, floor_seconds=10.0) == pytest.approx(10 / (10 + 4 + 1 + 2 + 3))
    text = "\n".join(write_costs.lines(costs, floor_seconds=10.0))
    assert "at best 0.50 of the floor" in text
    assert "| index `observation_year` | 50.00 | 50.0 | no (reads) |" in text
