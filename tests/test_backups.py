"""backup / restore round-trip the whole warehouse, history included; a bad archive changes nothing."""

import copy

import psycopg
import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from stats.backups import BackupError, backup_create, backup_restore

TABLES = [
    "stats_observation",
    "stats_observationevent",
    "stats_restatement",
    "stats_indicator",
    "stats_member",
    "stats_memberalias",
    "stats_source",
    "stats_importrecord",
    "stats_dataversion",
    "pghistory_context",
]


def fingerprint(conninfo: dict) -> dict:
    """Row count and a digest of every row, per table."""
    with psycopg.connect(**conninfo) as conn:
        return {
            table: conn.execute(
                f"SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM {table} t"
            ).fetchone()
            for table in TABLES
        }


def conninfo(database: dict) -> dict:
    info = {"dbname": database["NAME"], "host": database["HOST"], "user": database["USER"]}
    if database.get("PORT"):
        info["port"] = database["PORT"]
    if database.get("PASSWORD"):
        info["password"] = database["PASSWORD"]
    return info


@pytest.fixture
def scratch_database(db):
    """An empty database beside the test database, dropped afterwards."""
    database = copy.deepcopy(settings.DATABASES["default"])
    database["NAME"] = connection.settings_dict["NAME"] + "_restore"
    admin = {**conninfo(database), "dbname": "postgres", "autocommit": True}
    with psycopg.connect(**admin) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{database["NAME"]}"')
        conn.execute(f'CREATE DATABASE "{database["NAME"]}"')
    yield database
    with psycopg.connect(**admin) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{database["NAME"]}" WITH (FORCE)')


def test_backup_and_restore_round_trip_the_warehouse(scratch_database, tmp_path):
    source = {**connection.settings_dict}
    archive = backup_create(path=tmp_path / "warehouse.dump", database=source)
    backup_restore(path=archive, database=scratch_database)
    before, after = fingerprint(conninfo(source)), fingerprint(conninfo(scratch_database))
    assert before["stats_observation"][0] > 1000
    assert after == before


def test_restoring_something_that_is_not_a_backup_changes_nothing(scratch_database, tmp_path):
    backup_restore(
        path=backup_create(path=tmp_path / "good.dump", database={**connection.settings_dict}),
        database=scratch_database,
    )
    before = fingerprint(conninfo(scratch_database))
    bad = tmp_path / "bad.dump"
    bad.write_bytes(b"PGDMP but not really an archive")
    with pytest.raises(BackupError, match="pg_restore failed"):
        backup_restore(path=bad, database=scratch_database)
    assert fingerprint(conninfo(scratch_database)) == before


def test_a_truncated_backup_is_refused_whole(scratch_database, tmp_path):
    good = backup_create(path=tmp_path / "good.dump", database={**connection.settings_dict})
    backup_restore(path=good, database=scratch_database)
    before = fingerprint(conninfo(scratch_database))
    truncated = tmp_path / "truncated.dump"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(BackupError):
        backup_restore(path=truncated, database=scratch_database)
    assert fingerprint(conninfo(scratch_database)) == before


def test_restore_asks_before_replacing_everything(tmp_path, monkeypatch, db):
    monkeypatch.setattr("builtins.input", lambda prompt: "no")
    with pytest.raises(CommandError, match="restore cancelled"):
        call_command("restore", str(tmp_path / "any.dump"))


def test_backup_command_names_a_missing_folder(tmp_path, db):
    with pytest.raises(CommandError, match="pg_dump failed"):
        call_command("backup", str(tmp_path / "no" / "such" / "folder" / "x.dump"))
