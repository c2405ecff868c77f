"""The flat facts table (stats.exports): one order and one formatting for CSV (COPY), JSON and XLSX,
for the whole warehouse and for a selection."""

import csv
import io
import threading
import time

import openpyxl
import psycopg
import pytest
from django.db import connection, transaction

from ncmec import direct
from stats import exports
from stats.exports import facts_csv, facts_headers, facts_rows, write_facts
from stats.exports_parallel import read_in_parallel
from stats.models import Observation, Restatement, Unit


def csv_of_rows(queryset=None) -> bytes:
    """The facts table written by Python's csv module from ``facts_rows`` (what COPY must reproduce)."""
    headers, rows = facts_rows(queryset)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(headers)
    for row in rows:
        writer.writerow(["" if v is None else v for v in row])
    return out.getvalue().encode()


@pytest.fixture
def shuffled(build):
    """Observations created out of the export's order: sources, indicators, years and ids interleaved."""
    dimension = build.dimension("export_state", members=["=Nevada", "Alaska"])
    nevada, alaska = dimension.members.order_by("order")
    late = build.source("export-b", edition=2031)
    early_b, early_a = build.source("export-z", edition=2030), build.source("export-y", edition=2030)
    second, first = build.indicator("export.second"), build.indicator("export.first", unit=Unit.PERCENT_CHANGE)
    made = [
        build.observation(second, early_a, 2030, "2.5000", members=[nevada], note="-5 is not a formula"),
        build.observation(first, late, 2031, "7"),
        build.observation(first, early_b, 2029, "1.2500", members=[alaska], quote="=SUM(A1:A3)"),
        build.observation(first, early_a, 2030, "3", members=[alaska, nevada][:1]),
        build.observation(first, early_a, 2029, "-4", members=[nevada], value_text="+4"),
        build.observation(second, early_a, 2030, "9", members=[alaska], flag="garbled", corrected_value="90",
                          correction_reason="@ a typo"),
    ]  # fmt: skip
    Restatement.objects.create(observation=made[1], value_text="7.0", qualifier="nearly", quote="printed again")
    Restatement.objects.create(observation=made[1], value_text="seven", quote="and again")
    return made


def test_rows_come_by_source_edition_and_slug_indicator_code_year_then_id(shuffled):
    rows = list(csv.DictReader(io.StringIO(b"".join(facts_csv()).decode())))
    mine = [r for r in rows if r["source_slug"].startswith("export-")]
    keys = [(r["source_slug"], r["indicator_code"], r["year"]) for r in mine]
    assert keys == [
        ("export-y", "export.first", "2029"),
        ("export-y", "export.first", "2030"),
        ("export-y", "export.second", "2030"),
        ("export-y", "export.second", "2030"),
        ("export-z", "export.first", "2029"),
        ("export-b", "export.first", "2031"),
    ]
    same_year = [int(r["observation_id"]) for r in mine[2:4]]
    assert same_year == sorted(same_year)
    everything = Observation.objects.select_related("source", "indicator")
    expected = sorted(everything, key=lambda o: (o.source.edition, o.source.slug, o.indicator.code, o.year, o.id))
    assert [int(r["observation_id"]) for r in rows] == [o.id for o in expected]


def test_copy_writes_what_the_rows_say_for_the_whole_table_and_a_selection(shuffled):
    whole = b"".join(facts_csv())
    assert whole == csv_of_rows()
    selection = Observation.objects.filter(source__slug__startswith="export-")
    assert b"".join(facts_csv(selection)) == csv_of_rows(selection)
    # A selection of every row takes the other query (sorted at once), with the same bytes.
    assert b"".join(facts_csv(Observation.objects.filter(pk__gt=0))) == whole


def test_preferred_only_reads_the_whole_table_and_keeps_one_figure_per_fact(shuffled, build):
    again = build.observation(shuffled[1].indicator, build.source("export-a", edition=2032), 2031, "7")
    preferred = b"".join(facts_csv(preferred_only=True))
    assert preferred == b"".join(facts_csv(Observation.objects.preferred()))
    ids = [int(r["observation_id"]) for r in csv.DictReader(io.StringIO(preferred.decode()))]
    order = ("source__edition", "source__slug", "indicator__code", "year", "id")
    assert ids == [o.id for o in Observation.objects.preferred().order_by(*order)]
    assert len({shuffled[1].id, again.id} & set(ids)) == 1  # one figure per fact


def test_a_row_is_formatted_for_spreadsheets(shuffled):
    rows = {int(r["observation_id"]): r for r in csv.DictReader(io.StringIO(b"".join(facts_csv()).decode()))}
    first, restated, formula, _, signed, corrected = (rows[o.id] for o in shuffled)
    assert list(first) == facts_headers()
    assert (first["value"], first["export_state"], first["note"]) == ("2.5", "'=Nevada", "'-5 is not a formula")
    assert (restated["export_state"], restated["also_printed_as"]) == ("", "7.0 (nearly); seven (exact)")
    assert (formula["value"], formula["export_state"], formula["quote"]) == ("1.25", "Alaska", "'=SUM(A1:A3)")
    assert (signed["value"], signed["value_text"]) == ("'-4", "'+4")
    assert (corrected["flag"], corrected["corrected_value"], corrected["correction_reason"]) == (
        "garbled", "90", "'@ a typo"
    )  # fmt: skip
    assert (first["preferred"], first["as_of"], first["since"]) == ("True", "", "")


def test_xlsx_is_written_row_by_row_with_the_same_rows(shuffled, tmp_path):
    path = tmp_path / "facts.xlsx"
    selection = Observation.objects.filter(source__slug__startswith="export-")
    with path.open("wb") as out:
        write_facts(out, "xlsx", selection)
    sheet = openpyxl.load_workbook(path, read_only=True).active
    cells = [["" if v is None else str(v) for v in row] for row in sheet.iter_rows(values_only=True)]
    expected = list(csv.reader(io.StringIO(csv_of_rows(selection).decode())))
    assert cells == expected


def _export_connections() -> int:
    """The parallel export's reader connections open on the server (seen from a connection of its own)."""
    with psycopg.connect(**direct.connection_kwargs("test-observer")) as observer:
        return observer.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'ncmec-export'"
        ).fetchone()[0]


def _export_readers_gone() -> bool:
    """No reader thread left, and no reader connection open on the server."""
    return _export_connections() == 0 and not any(t.name.startswith("export-reader-") for t in threading.enumerate())


def _until(condition, deadline_s: float = 20) -> bool:
    deadline = time.monotonic() + deadline_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.mark.django_db(transaction=True)
def test_the_whole_table_is_read_in_pieces_by_several_connections_as_one_snapshot(
    shuffled, build, monkeypatch, settings
):
    for n in range(4):  # more pairs: each reader has pieces left while the first is written
        build.observation(shuffled[0].indicator, build.source(f"export-p{n}", edition=2040 + n), 2040, str(n))
    monkeypatch.setattr(exports, "PIECE_ROWS", Observation.objects.count() // 8)  # more pieces than readers
    settings.EXPORT_READERS = 1
    one_reader = b"".join(facts_csv())
    assert one_reader == csv_of_rows()
    settings.EXPORT_READERS = 2
    export = facts_csv()
    started = next(export) + next(export)  # the header, then the first piece: the snapshot is taken
    assert _until(lambda: _export_connections() == 2)  # both readers wait, a piece read ahead each
    last = Observation.objects.order_by("-source__edition", "-source__slug", "-indicator__code", "-year", "-id")[0]
    with psycopg.connect(**direct.connection_kwargs("test-writer")) as writer:  # committed during the export
        writer.execute("UPDATE stats_observation SET note = 'written during the export' WHERE id = %s", [last.id])
    assert started + b"".join(export) == one_reader  # one snapshot: the later pieces do not see the write
    assert b"written during the export" in b"".join(facts_csv())
    assert _until(_export_readers_gone)


@pytest.mark.django_db(transaction=True)
def test_an_abandoned_or_failed_parallel_export_leaves_no_reader_behind(shuffled, monkeypatch):
    monkeypatch.setattr(exports, "PIECE_ROWS", Observation.objects.count() // 8)
    export = facts_csv()
    next(export), next(export)
    export.close()  # the client went away
    assert _until(_export_readers_gone)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        cursor.execute("SELECT pg_export_snapshot()")
        snapshot = cursor.fetchone()[0]
        pieces = [("SELECT 1", []), ("SELECT 1 / (SELECT count(*) - count(*) FROM stats_source)", [])]
        with pytest.raises(psycopg.errors.DivisionByZero):
            b"".join(read_in_parallel(pieces, snapshot, readers=2))
    assert _until(_export_readers_gone)
