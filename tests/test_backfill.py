"""Batched backfills (stats.backfill): one short transaction per batch, never one for the whole table."""

import pytest
from django.db import connections

from stats.backfill import backfill


@pytest.fixture
def own_connection(db):
    """A connection outside the test's transaction, as a migration with atomic = False has."""
    connection = connections.create_connection("default")
    yield connection
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS backfill_demo")  # a pooled connection outlives the test
    connection.close()


@pytest.mark.parametrize(("rows", "batch", "transactions"), [(2500, 1000, 3), (10, 1000, 1), (0, 1000, 0)])
def test_each_batch_is_its_own_transaction(own_connection, rows, batch, transactions):
    with own_connection.cursor() as cursor:
        cursor.execute("CREATE TEMP TABLE backfill_demo (id bigint PRIMARY KEY, done bigint)")
        cursor.execute("INSERT INTO backfill_demo SELECT i, NULL FROM generate_series(1, %s) i", [rows])
    changed = backfill(own_connection, "backfill_demo", "done = txid_current()", "done IS NULL", batch=batch)
    with own_connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FILTER (WHERE done IS NULL), count(DISTINCT done) FROM backfill_demo")
        assert cursor.fetchone() == (0, transactions)
    assert changed == rows
    # Run again (an interrupted migration resumed): the WHERE skips what is done.
    assert backfill(own_connection, "backfill_demo", "done = txid_current()", "done IS NULL", batch=batch) == 0


def test_inside_a_transaction_it_refuses(db):
    from django.db import connection

    with pytest.raises(RuntimeError, match="set atomic = False on the migration"):
        backfill(connection, "stats_observation", "note = note")
