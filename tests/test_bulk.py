"""Bulk writes: rules checked per statement (COPY and raw SQL too), streamed import files, reverting an import."""

import io
import zipfile

import openpyxl
import psycopg
import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction

from stats.importing import long_rows, read_dataset
from stats.lookups import CatalogLookup
from stats.models import ImportRecord, Indicator, Observation, Unit
from stats.services.errors import ImportFailed
from stats.services.observations import ObservationRow, import_revert, observations_import


@pytest.fixture
def cube(build):
    topic = build.topic()
    count = build.indicator("bulk.cases", unit=Unit.COUNT, topic=topic)
    status = build.dimension("bulk_status", members=["Active", "Resolved"])
    state = build.dimension("bulk_state", members=["Nevada", "Alaska"])
    source = build.source("bulk-2025", edition=2025)
    return {"count": count, "status": status, "state": state, "source": source}


def copy_rows(cube, rows: list[tuple]) -> None:
    """COPY (member_ids, value, dimension_ids, member_order) rows, as a bulk writer that fills the derived columns."""
    with (
        connection.cursor() as cursor,
        cursor.cursor.copy(
            "COPY stats_observation (indicator_id, source_id, year, member_ids, value, value_text, quote, "
            "dimension_ids, member_order, created_at, updated_at) FROM STDIN"
        ) as copy,
    ):
        for member_ids, value, dimension_ids, member_order in rows:
            copy.write_row((cube["count"].id, cube["source"].id, 2025, member_ids, value, str(value), "q",
                            dimension_ids, member_order, "now", "now"))  # fmt: skip


def derived(member_ids: list[int]) -> tuple[list[int], str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT dimension_ids, member_order FROM stats_breakdown(%s::bigint[])", [member_ids])
        return cursor.fetchone()


# COPY runs on psycopg's own cursor, so its errors are psycopg's, not Django's.
REFUSED = (IntegrityError, psycopg.errors.IntegrityError)


def members(cube, *codes):
    return sorted(m.id for d in ("status", "state") for m in cube[d].members.filter(code__in=codes))


def test_copy_with_the_derived_columns_is_checked_per_statement(cube):
    both = members(cube, "active", "nevada")
    dims, order = derived(both)
    copy_rows(cube, [(both, 5, dims, order), ([], 6, [], "")])
    assert Observation.objects.filter(indicator=cube["count"]).count() == 2
    assert Observation.objects.get(indicator=cube["count"], value=5).member_order == order


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (lambda c, ids, dims, order: [(ids, 1, dims, order), (ids[::-1], 2, dims, order)], "is not sorted"),
        (lambda c, ids, dims, order: [(ids, 1, dims, order), ([*ids, 999_999_999], 2, dims, "x")],
         "names a member that does not exist"),
        (lambda c, ids, dims, order: [(ids, 1, dims[:1], order)], "are not the ones it implies"),
        (lambda c, ids, dims, order: [(ids, 1, dims, order + "x")], "are not the ones it implies"),
        (lambda c, ids, dims, order: [(ids, 1, dims, order), ([], -3, [], "")],
         r"value -3\.0000 does not fit the unit count of indicator bulk\.cases"),
        (lambda c, ids, dims, order: [([ids[0], ids[0]], 1, [dims[0]], "y")], "names a member twice"),
    ],
)  # fmt: skip
def test_copy_that_breaks_a_rule_is_refused_whole(cube, rows, message):
    both = members(cube, "active", "nevada")
    dims, order = derived(both)
    with pytest.raises(REFUSED, match=message), transaction.atomic():
        copy_rows(cube, rows(cube, both, dims, order))
    assert not Observation.objects.filter(indicator=cube["count"]).exists()


def test_two_members_of_one_dimension_are_refused_in_bulk(cube):
    two = members(cube, "nevada", "alaska")
    with pytest.raises(REFUSED, match="has two members of one dimension"), transaction.atomic():
        copy_rows(cube, [(two, 1, [cube["state"].id] * 2, "z")])


def test_a_bulk_update_out_of_unit_is_refused(build, cube):
    first = build.observation(cube["count"], cube["source"], year=2025, value="1")
    build.observation(cube["count"], cube["source"], year=2024, value="2")
    with pytest.raises(IntegrityError, match=r"value -1\.0000 does not fit"), transaction.atomic():
        Observation.objects.filter(indicator=cube["count"]).update(value=-1)
    first.refresh_from_db()
    assert first.value == 1


def test_raw_sql_without_the_derived_columns_gets_them_filled(cube):
    both = members(cube, "nevada", "resolved")
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO stats_observation (indicator_id, source_id, year, member_ids, value, value_text, quote, "
            "created_at, updated_at) VALUES (%s, %s, 2025, %s, 1, '1', 'q', now(), now()) RETURNING id",
            [cube["count"].id, cube["source"].id, both[::-1]],
        )
        obs = Observation.objects.get(pk=cursor.fetchone()[0])
    assert (obs.member_ids, (obs.dimension_ids, obs.member_order)) == (both, derived(both))


def long_file(*lines: str) -> bytes:
    return ("indicator,source,year,bulk_state,bulk_status,value\n" + "".join(f"{line}\n" for line in lines)).encode()


def test_a_csv_over_the_row_limit_stops_reading_at_the_limit(cube, settings):
    settings.IMPORT_MAX_ROWS = 2
    records = iter(read_dataset(long_file(*["bulk.cases,bulk-2025,2025,Nevada,Active,1"] * 5), "f.csv"))
    assert next(records) == next(records) == ["bulk.cases", "bulk-2025", "2025", "Nevada", "Active", "1"]
    with pytest.raises(ImportFailed, match="more than 2 rows"):
        next(records)


def test_an_xlsx_that_unpacks_over_the_size_limit_is_refused_before_reading(settings):
    book = openpyxl.Workbook()
    book.active.append(["indicator", "value"])
    for _ in range(2000):
        book.active.append(["bulk.cases", "1" * 50])
    data = io.BytesIO()
    book.save(data)
    unpacked = sum(i.file_size for i in zipfile.ZipFile(io.BytesIO(data.getvalue())).infolist())
    settings.IMPORT_MAX_BYTES = len(data.getvalue()) + 1  # the file itself is within the limit
    assert unpacked > settings.IMPORT_MAX_BYTES
    with pytest.raises(ImportFailed, match="the XLSX file unpacks to 0 MB, over the size limit of 0 MB"):
        read_dataset(data.getvalue(), "big.xlsx")


def test_a_streamed_file_imports_all_or_nothing(cube):
    good = ["bulk.cases,bulk-2025,2025,Nevada,Active,1", "bulk.cases,bulk-2025,2025,Alaska,Active,2"]
    with pytest.raises(ImportFailed, match='row 4, column "bulk_state": unknown member'):
        observations_import(rows=long_rows(read_dataset(long_file(*good, "bulk.cases,bulk-2025,2025,Utopia,Active,3"),
                                                        "f.csv"), CatalogLookup.load()))  # fmt: skip
    assert not Observation.objects.filter(indicator=cube["count"]).exists()
    result = observations_import(rows=long_rows(read_dataset(long_file(*good), "f.csv"), CatalogLookup.load()))
    assert (result.rows, result.new) == (2, 2)


def import_file(*lines: str, reason: str = "") -> ImportRecord:
    rows = [
        ObservationRow(indicator="bulk.cases", source="bulk-2025", year=2025, members={"bulk_state": state},
                       value_text=value, row=n)
        for n, (state, value) in enumerate((line.split(",") for line in lines), start=2)
    ]  # fmt: skip
    return observations_import(rows=rows, reason=reason).record


def test_an_import_reverts_as_a_whole(cube, build):
    kept = build.observation(cube["count"], cube["source"], year=2024, value="7")
    first = import_file("Nevada,1", "Alaska,2")
    second = import_file("Nevada,10", "Alaska,2", reason="erratum")  # changes one, keeps one
    assert (second.new, second.changed, second.unchanged) == (0, 1, 1)
    nevada = Observation.objects.get(indicator=cube["count"], year=2025, member_ids=members(cube, "nevada"))
    assert nevada.value == 10

    done = import_revert(second.pk, reason="the erratum was wrong")
    assert (done.deleted, done.restored) == (0, 1)
    nevada.refresh_from_db()
    assert (nevada.value, nevada.value_text) == (1, "1")
    second.refresh_from_db()
    assert second.status == ImportRecord.Status.REVERTED
    events = nevada.events.order_by("pgh_id")
    assert [e.pgh_label for e in events] == ["insert", "update", "update"]
    assert events.last().pgh_context.metadata["reverts_import"] == second.pk

    assert import_revert(first.pk, reason="wrong file").deleted == 2
    assert list(Observation.objects.filter(indicator=cube["count"])) == [kept]


def test_a_revert_refuses_to_overwrite_later_changes(cube):
    first = import_file("Nevada,1")
    import_file("Nevada,3", reason="erratum")
    with pytest.raises(ValidationError, match=r"observations #\d+ were changed after import"):
        import_revert(first.pk, reason="wrong file")
    assert Observation.objects.get(indicator=cube["count"]).value == 3
    with pytest.raises(ValidationError, match="say why"):
        import_revert(first.pk, reason=" ")


def test_the_admin_reverts_a_selected_import(client, editor, cube):
    record = import_file("Nevada,1", "Alaska,2")
    response = client.post(
        "/admin/stats/importrecord/", {"action": "revert_imports", "_selected_action": [record.pk]}, follow=True
    )
    assert "2 removed, 0 restored" in response.content.decode()
    assert not Observation.objects.filter(indicator=cube["count"]).exists()
    again = client.post(
        "/admin/stats/importrecord/", {"action": "revert_imports", "_selected_action": [record.pk]}, follow=True
    )
    assert "nothing to revert" in again.content.decode()


def insert_claiming_preferred(cube, source, value, *, given: bool) -> None:
    """A raw insert of one bulk.cases 2025 figure that claims to be its fact's preferred one."""
    with connection.cursor() as cursor:
        if given:
            cursor.execute("SET LOCAL stats.preferred_given = on")
        cursor.execute(
            "INSERT INTO stats_observation (indicator_id, source_id, year, period, member_ids, value, value_text, "
            "quote, is_preferred) VALUES (%s, %s, 2025, 'annual', '{}', %s, %s, 'q', true)",
            [cube["count"].id, source.id, value, str(value)],
        )


def updates_in_this_transaction() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT n_tup_upd FROM pg_stat_xact_user_tables WHERE relname = 'stats_observation'")
        return cursor.fetchone()[0]


def test_a_bulk_writer_inserts_a_facts_only_figure_as_preferred_without_writing_it_twice(cube):
    with transaction.atomic():
        before = updates_in_this_transaction()
        insert_claiming_preferred(cube, cube["source"], 5, given=True)
        assert updates_in_this_transaction() == before  # not entered unpreferred and promoted
    assert Observation.objects.get(indicator=cube["count"]).is_preferred


def test_a_claimed_preferred_figure_of_a_stored_fact_is_refused(cube, build):
    insert_claiming_preferred(cube, cube["source"], 5, given=False)
    with pytest.raises(IntegrityError, match="observation_one_preferred_per_fact"), transaction.atomic():
        insert_claiming_preferred(cube, build.source(edition=2024), 6, given=True)
    assert Observation.objects.filter(indicator=cube["count"]).count() == 1


def test_without_the_setting_a_claim_is_ranked_as_before(cube, build):
    older = build.source(edition=2024)
    insert_claiming_preferred(cube, older, 6, given=False)
    insert_claiming_preferred(cube, cube["source"], 5, given=False)  # the year's own report wins
    assert Observation.objects.get(indicator=cube["count"], is_preferred=True).source == cube["source"]


def test_a_statement_with_one_value_over_its_unit_names_that_value(build, cube):
    share = build.indicator("bulk.share", unit=Unit.PERCENT)
    with pytest.raises(IntegrityError, match=r"value 120\.0000 does not fit the unit percent"), transaction.atomic():
        Observation.objects.bulk_create(
            [Observation(indicator=share, source=cube["source"], year=y, value=v, value_text=str(v), quote="q")
             for y, v in ((2021, 50), (2022, 120), (2023, 30))]
        )  # fmt: skip
    with pytest.raises(IntegrityError, match=r"corrected value -2\.0000 does not fit"), transaction.atomic():
        Observation.objects.bulk_create(
            [Observation(indicator=share, source=cube["source"], year=y, value=1, value_text="1", quote="q",
                         corrected_value=c, correction_reason="why") for y, c in ((2021, 5), (2022, -2))]
        )  # fmt: skip


def service_rows(*facts: tuple[str, str, str]) -> list[ObservationRow]:
    """(source slug, state, value) rows of bulk.cases 2025, numbered from 2 as in a file."""
    return [
        ObservationRow(indicator="bulk.cases", source=slug, year=2025, members={"bulk_state": state},
                       value_text=value, row=n)
        for n, (slug, state, value) in enumerate(facts, start=2)
    ]  # fmt: skip


def test_an_import_keeps_one_preferred_figure_per_fact_by_the_rule(cube, build):
    build.source("bulk-2024", edition=2024)
    build.source("bulk-sheet", edition=2025, kind="fact_sheet")
    observations_import(rows=service_rows(("bulk-2024", "Nevada", "1")), confirm_years_outside_edition=True)
    observations_import(
        rows=service_rows(
            ("bulk-2025", "Nevada", "2"),  # beats the stored figure of last year's report
            ("bulk-sheet", "Alaska", "3"),  # a new fact printed by two sources in one file
            ("bulk-2025", "Alaska", "4"),
            ("bulk-sheet", "Nevada", "6"),
        ),
        confirm_years_outside_edition=True,
    )
    preferred = {
        (tuple(o.member_ids), o.source.slug)
        for o in Observation.objects.filter(indicator=cube["count"], is_preferred=True).select_related("source")
    }
    assert preferred == {(tuple(members(cube, "nevada")), "bulk-2025"), (tuple(members(cube, "alaska")), "bulk-2025")}


def test_duplicates_found_by_the_database_name_every_extra_row_and_the_first(cube):
    rows = service_rows(("bulk-2025", "Nevada", "1"), ("bulk-2025", "Alaska", "2"), ("bulk-2025", "Nevada", "3"),
                        ("bulk-2025", "Alaska", "4"), ("bulk-2025", "Nevada", "5"))  # fmt: skip
    with pytest.raises(ImportFailed) as failure:
        observations_import(rows=rows)
    assert [str(e) for e in failure.value.errors] == [
        "row 4: duplicate of row 2: same indicator, source, year, period and breakdown",
        "row 5: duplicate of row 3: same indicator, source, year, period and breakdown",
        "row 6: duplicate of row 2: same indicator, source, year, period and breakdown",
    ]
    assert not Observation.objects.filter(indicator=cube["count"]).exists()


def test_the_import_makes_as_many_queries_for_more_rows(cube, build):
    """Validation, planning and the write are set-based: the queries do not grow with the rows."""
    from django.db import connection as db
    from django.test.utils import CaptureQueriesContext

    years = [build.source(f"bulk-{y}", edition=y).slug for y in range(2010, 2020)]

    def queries(sources: list[str], reason: str = "", offset: int = 0) -> int:
        rows = [ObservationRow(indicator="bulk.cases", source=slug, year=2025, members={"bulk_state": state},
                               value_text=str(n + offset), row=n) for n, (slug, state) in
                enumerate(((s, st) for s in sources for st in ("Nevada", "Alaska")), start=2)]  # fmt: skip
        with CaptureQueriesContext(db) as captured:
            observations_import(rows=rows, reason=reason, confirm_years_outside_edition=True)
        return len(captured)

    assert queries(years[:1]) == queries(years[1:])  # 2 new rows, then 18
    assert queries(years[:1], "erratum", 100) == queries(years[1:], "erratum", 100)  # every row changes
    assert queries(years[:1], "back") == queries(years[1:], "back")  # and back


def sql(statement: str, params=()) -> None:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)


def test_an_observation_naming_an_indicator_or_source_that_does_not_exist_is_refused(cube):
    with pytest.raises(REFUSED, match=r"Key \(indicator_id\)=\(999999999\) is not present"), transaction.atomic():
        copy_rows({**cube, "count": Indicator(id=999_999_999)}, [([], 1, [], "")])
    missing_source = Observation(indicator=cube["count"], source_id=999_999_999, year=2025, value=1, value_text="1",
                                 quote="q")  # fmt: skip
    with pytest.raises(IntegrityError, match=r"Key \(source_id\)=\(999999999\) is not present"), transaction.atomic():
        missing_source.save()
    assert not Observation.objects.filter(indicator=cube["count"]).exists()


def test_an_indicator_or_source_observations_name_cannot_be_deleted_or_renumbered(cube, build):
    build.observation(cube["count"], cube["source"], year=2025, value="1")
    for table, key in (("stats_indicator", cube["count"].id), ("stats_source", cube["source"].id)):
        for statement in (f"DELETE FROM {table} WHERE id = %s", f"UPDATE {table} SET id = id + 1000000 WHERE id = %s"):
            with pytest.raises(IntegrityError, match="violates foreign key constraint"), transaction.atomic():
                sql(statement, [key])
    assert Observation.objects.filter(indicator=cube["count"], source=cube["source"]).count() == 1
    unused = build.source(edition=2020)
    sql("DELETE FROM stats_source WHERE id = %s", [unused.id])  # names nothing: deleted
    assert not type(unused).objects.filter(pk=unused.pk).exists()


def pending_pages_cleaned() -> int:
    """Pages of the breakdown GIN index's pending list, moved into the index now (0: none were left)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT gin_clean_pending_list('observation_member_ids_gin'::regclass)")
        return cursor.fetchone()[0]


@pytest.mark.parametrize("large", [False, True])
def test_a_large_import_leaves_no_pending_entries_in_the_breakdown_index(
    cube, monkeypatch, django_capture_on_commit_callbacks, large
):
    """Queries through the GIN index read its whole pending list; a large import moves it into the index."""
    from stats.services.observations import importing

    monkeypatch.setattr(importing, "ANALYZED_AFTER", 2 if large else 3)
    pending_pages_cleaned()
    with django_capture_on_commit_callbacks(execute=True):
        import_file("Nevada,1", "Alaska,2")
    assert (pending_pages_cleaned() == 0) is large


def test_a_short_spreadsheet_row_reads_its_missing_cells_as_empty(cube):
    """A spreadsheet may leave a row's trailing empty cells out: they read as empty, and validation names them."""
    from stats.importing import TableFile

    header = ["indicator", "source", "year", "value", "bulk_state", "note"]
    dataset = TableFile(iter([header, ["bulk.cases", "bulk-2025", 2025, "4", "Nevada"]]), "xlsx")
    (row,) = long_rows(dataset, CatalogLookup.load())
    assert (row.value_text, row.members, row.note, "note" in row.unset) == ("4", {"bulk_state": "Nevada"}, "", True)
    short = TableFile(iter([header, ["bulk.cases", "bulk-2025"]]), "xlsx")
    with pytest.raises(ImportFailed, match="row 2, column \"year\": year '' is not a whole number") as refused:
        observations_import(rows=long_rows(short, CatalogLookup.load()))
    assert 'row 2, column "value": no figure' in str(refused.value)
