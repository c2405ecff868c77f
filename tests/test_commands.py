"""The command-line tools: export_facts, check_data, import_table, import_facts."""

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import openpyxl
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from stats.models import Observation

pytestmark = pytest.mark.django_db


def test_export_facts_writes_one_row_per_observation_with_a_column_per_dimension(tmp_path):
    out = io.StringIO()
    call_command("export_facts", stdout=out)
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert len(rows) == Observation.objects.count()
    ak = next(
        r for r in rows if r["source_slug"] == "impact-2024" and r["state"] == "Alaska" and r["case_status"] == ""
    )
    assert (ak["value"], ak["value_text"], ak["year"], ak["source_document"]) == (
        "33",
        "33",
        "2024",
        "003_1c47469dd1ca329a.txt",
    )
    garbled = next(r for r in rows if r["value_text"] == "29,397,681 million")
    assert (garbled["flag"], garbled["corrected_value"], garbled["display_value"]) == (
        "garbled",
        "29397681",
        "29397681",
    )
    assert ak["display_value"] == ak["value"] == "33"  # nothing corrected: the printed figure


def test_export_facts_json_and_xlsx(tmp_path):
    call_command("export_facts", "--format", "json", "--output", str(tmp_path / "facts.json"), stderr=io.StringIO())
    assert len(json.loads((tmp_path / "facts.json").read_text())) == Observation.objects.count()
    call_command("export_facts", "--format", "xlsx", "--output", str(tmp_path / "facts.xlsx"), stderr=io.StringIO())
    sheet = openpyxl.load_workbook(tmp_path / "facts.xlsx").active
    assert sheet.max_row == Observation.objects.count() + 1


def test_check_data_fails_on_an_unexplained_mismatch(build):
    indicator = build.indicator("test.check")
    dim = build.dimension("test_check_dim", members=["One", "Two"])
    one, two = dim.members.order_by("order")
    source = build.source("test-check")
    for member, value in ((one, "1"), (two, "2"), (None, "4")):
        build.observation(indicator, source, 2022, value, members=[member] if member else [], table="T")
    with pytest.raises(CommandError, match="1 unexplained total mismatch"):
        call_command("check_data", "--source", "test-check", stdout=io.StringIO())


def test_import_table_dry_run_then_import(tmp_path):
    table = tmp_path / "states.csv"
    table.write_text("MISSING STATE,ACTIVE,RESOLVED,GRAND TOTAL\nAK,3,30,33\nTotal,3,30,33\n")
    args = [str(table), "--indicator", "missing.cases", "--year", "2025", "--source", "impact-2024",
            "--rows", "state", "--columns", "case_status"]  # fmt: skip
    out = io.StringIO()
    call_command("import_table", *args, "--dry-run", stdout=out)
    assert "would import 6 figures from states.csv: 6 new, 0 changed, 0 unchanged" in out.getvalue()
    assert not Observation.objects.filter(year=2025).exists()
    assert "impact-2024 reports on 2024; figures for 2025 (confirm with --confirm-years-outside-edition)" in (
        out.getvalue()
    )
    with pytest.raises(CommandError, match="figures for 2025 in impact-2024, whose edition is 2024: confirm"):
        call_command("import_table", *args, stdout=io.StringIO())
    call_command("import_table", *args, "--confirm-years-outside-edition", stdout=io.StringIO())
    assert Observation.objects.filter(year=2025).count() == 6


def test_import_table_settles_a_sum_mismatch_only_with_a_note(tmp_path, build):
    build.source("impact-2025", edition=2025)
    table = tmp_path / "states.csv"
    table.write_text("MISSING STATE,ACTIVE,RESOLVED,GRAND TOTAL\nAK,3,30,34\nTotal,3,30,34\n")
    args = [str(table), "--indicator", "missing.cases", "--year", "2025", "--source", "impact-2025",
            "--rows", "state", "--columns", "case_status"]  # fmt: skip
    with pytest.raises(CommandError, match=r"the parts do not add up: .*case_status parts of state=AK sum to 33"):
        call_command("import_table", *args, stdout=io.StringIO())
    assert not Observation.objects.filter(year=2025).exists()
    out = io.StringIO()
    call_command("import_table", *args, "--flag-sum-mismatch", "as printed in the report", stdout=out)
    assert "6 new, 0 changed, 0 unchanged, 2 flagged as a sum mismatch" in out.getvalue()
    flagged = Observation.objects.filter(year=2025, flag="sum_mismatch")
    assert sorted(flagged.values_list("value_text", "note")) == [("34", "as printed in the report")] * 2
    call_command("check_data", stdout=io.StringIO())


def test_import_facts_names_the_bad_row_and_writes_nothing(tmp_path):
    facts = tmp_path / "facts.csv"
    facts.write_text("indicator,source,year,state,value\nmissing.cases,impact-2024,2025,AK,5\n"
                     "missing.cases,impact-2024,2025,Nevadda,6\n")  # fmt: skip
    with pytest.raises(CommandError, match=r'row 3, column "state": unknown member "Nevadda"'):
        call_command("import_facts", str(facts), stdout=io.StringIO())
    assert not Observation.objects.filter(year=2025).exists()


def test_localdb_status_only_reports(tmp_path):
    """`manage.py localdb status` never loads the settings, which would start the database it reports on."""
    from ncmec import localdb

    never_started = tmp_path / "pgdata"
    assert localdb.status(never_started) == f"embedded PostgreSQL in {never_started}: stopped"
    assert not never_started.exists()
    root = Path(__file__).resolve().parent.parent
    # Settings that cannot load: a command that loaded them would fail.
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "ncmec.no_such_settings"}
    result = subprocess.run([sys.executable, "manage.py", "localdb", "status"], cwd=root, env=env,
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr
    running = "running" if localdb.is_running() else "stopped"
    assert result.stdout.strip() == f"embedded PostgreSQL in {localdb.DEFAULT_DATA_DIR}: {running}"
