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
from stats.models import ImportRecord, Observation, Unit
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
