"""Bad input is a row error naming the row and the file's own column, never a 500 and never silently changed.

Every field of the long shape, the table shape and both staff mutations, tried with wrong types,
out-of-range values and garbage (and hypothesis over the file shapes).
"""

import csv
import io
import json
import zipfile
from decimal import Decimal

import openpyxl
import pytest
from django.contrib.auth.models import Permission, User
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stats.importing import TableOptions, long_rows, read_dataset, table_rows
from stats.lookups import CatalogLookup
from stats.models import Observation
from stats.services.errors import ImportFailed
from stats.services.observations import observations_import

pytestmark = pytest.mark.django_db
LONG_HEADER = ["indicator", "source", "year", "state", "case_status", "value", "period", "since", "as_of",
               "qualifier", "quote", "flag", "note"]  # fmt: skip
GOOD = {"indicator": "missing.cases", "source": "impact-2024", "year": "2025", "state": "Texas",
        "case_status": "Active", "value": "254", "period": "", "since": "", "as_of": "", "qualifier": "",
        "quote": "", "flag": "", "note": ""}  # fmt: skip


def csv_bytes(header: list[str], rows: list[list]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode()


def xlsx_bytes(header: list[str], rows: list[list]) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(header)
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def import_long(data: bytes, name: str = "facts.csv"):
    """The long shape as the admin and ``import_facts`` run it, previewed (nothing is written)."""
    rows = long_rows(read_dataset(data, name), CatalogLookup.load())
    return observations_import(rows=rows, dry_run=True)


def long_errors(data: bytes, name: str = "facts.csv") -> list[str]:
    with pytest.raises(ImportFailed) as failure:
        import_long(data, name)
    return [str(e) for e in failure.value.errors]


def one(**fields) -> bytes:
    return csv_bytes(LONG_HEADER, [[fields.get(h, GOOD[h]) for h in LONG_HEADER]])


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"since": "abc", "period": "cumulative"}, "row 2, column \"since\": since 'abc' is not a whole number"),
        ({"since": "1970", "period": "cumulative"}, 'row 2, column "since": since 1970 is outside 1984–2100'),
        ({"since": "2000"}, 'row 2, column "since": since is only for cumulative figures'),
        ({"as_of": "2021-13-45"}, "row 2, column \"as_of\": as_of '2021-13-45' is not a date (YYYY-MM-DD)"),
        ({"as_of": "yesterday"}, "row 2, column \"as_of\": as_of 'yesterday' is not a date (YYYY-MM-DD)"),
        ({"year": "2021.7"}, "row 2, column \"year\": year '2021.7' is not a whole number"),
        ({"year": "twenty"}, "row 2, column \"year\": year 'twenty' is not a whole number"),
        ({"year": "99999999999"}, "row 2, column \"year\": year '99999999999' is not a whole number"),
        ({"year": "1900"}, 'row 2, column "year": year 1900 is outside 1984–2100'),
        ({"value": "45%"}, "row 2, column \"value\": '45%' is a percentage but missing.cases is measured in count"),
        ({"value": "1.23456"}, 'row 2, column "value": 1.23456 has more than 4 decimal places'),
        ({"value": "1" * 23}, 'row 2, column "value": ' + "1" * 23 + " is too large"),
        ({"value": "9" * 101}, 'row 2, column "value": the printed figure is 101 characters long (at most 100)'),
        ({"value": "83,000+", "qualifier": "nearly"}, "row 2, column \"qualifier\": '83,000+' ends in + but"),
        ({"value": "=1+2"}, "row 2, column \"value\": '=1+2' looks like a spreadsheet formula"),
        ({"note": '=HYPERLINK("x")'}, 'row 2, column "note": \'=HYPERLINK("x")\' looks like a spreadsheet'),
        ({"quote": "@SUM(A1)"}, "row 2, column \"quote\": '@SUM(A1)' looks like a spreadsheet formula"),
        ({"note": "-cmd|' /C calc'!A0"}, 'row 2, column "note": '),
        ({"note": "bad\x00byte"}, 'row 2, column "note": contains a NUL character'),
        ({"period": "weekly"}, "row 2, column \"period\": unknown period 'weekly'"),
        ({"qualifier": "roughly"}, "row 2, column \"qualifier\": unknown qualifier 'roughly'"),
        ({"flag": "wrong"}, "row 2, column \"flag\": unknown flag 'wrong'"),
        ({"state": "Texass"}, 'row 2, column "state": unknown member "Texass"'),
        ({"indicator": "x" * 500}, 'row 2, column "indicator": unknown indicator'),
    ],
)  # fmt: skip
def test_every_long_field_names_the_row_and_column(fields, message):
    errors = long_errors(one(**fields))
    assert any(e.startswith(message) for e in errors), errors


def test_a_good_row_is_taken_as_written():
    result = import_long(one(period="cumulative", since="1998", as_of="2025-06-30", note="  checked  "))
    (row,) = result.valid_rows
    f = row.fields
    assert (f["year"], f["since"], str(f["as_of"]), f["value"], f["note"]) == (2025, 1998, "2025-06-30", 254, "checked")


def test_spreadsheet_numbers_are_read_exactly_or_refused():
    """XLSX cells are numbers: 2025.0 is the year 2025, 2021.7 is no year."""
    header = ["indicator", "source", "year", "state", "case_status", "value"]
    good = xlsx_bytes(header, [["missing.cases", "impact-2024", 2025.0, "Texas", "Active", 254]])
    assert import_long(good, "facts.xlsx").valid_rows[0].fields["year"] == 2025
    bad = xlsx_bytes(header, [["missing.cases", "impact-2024", 2021.7, "Texas", "Active", 254]])
    assert long_errors(bad, "facts.xlsx") == ["row 2, column \"year\": year '2021.7' is not a whole number"]
    data = json.dumps([{"indicator": "missing.cases", "source": "impact-2024", "year": 2021.7, "state": "Texas",
                        "case_status": "Active", "value": 254}]).encode()  # fmt: skip
    assert long_errors(data, "facts.json") == ["row 2, column \"year\": year '2021.7' is not a whole number"]


def test_errors_name_the_files_own_headers():
    header = ["Indicator", "Source", "Year", "STATE", "Case_Status", "Value", "Note"]
    data = csv_bytes(header, [["missing.cases", "impact-2024", "2025", "Texas", "Active", "forty", ""],
                              ["missing.cases", "impact-2024", "20x5", "Texass", "Active", "4", "=1"]])  # fmt: skip
    errors = long_errors(data)
    assert (
        "row 2, column \"Value\": 'forty' is not a number (expected e.g. 29,568 / 21.7 million / 91% / 1 in 6)"
        in errors
    )
    assert "row 3, column \"Year\": year '20x5' is not a whole number" in errors
    assert any(e.startswith('row 3, column "STATE": unknown member "Texass"') for e in errors), errors
    assert any(e.startswith("row 3, column \"Note\": '=1' looks like a spreadsheet formula") for e in errors), errors


def test_a_title_line_above_the_header_gets_a_hint():
    long = b"Missing children 2025,,,,,\n" + csv_bytes(
        ["indicator", "source", "year", "state", "case_status", "value"],
        [["missing.cases", "impact-2024", "2025", "Texas", "Active", "254"]],
    )
    hint = "row 1: the header is on line 2, not on the first line: delete the 1 line above it (a title?)"
    assert [e[: len(hint)] for e in long_errors(long)] == [hint]
    table = b"Table 3: missing children by state,,,\nMISSING STATE,ACTIVE,RESOLVED,TOTAL\nAK,3,30,33\nTotal,3,30,33\n"
    options = TableOptions(indicator="missing.cases", year=2025, source="impact-2024", rows="state",
                           columns="case_status")  # fmt: skip
    with pytest.raises(ImportFailed) as failure:
        table_rows(read_dataset(table, "t.csv"), options)
    assert [str(e)[: len(hint)] for e in failure.value.errors] == [hint]


def test_table_cells_name_their_column_header():
    table = b"State,Active,Resolved,Total\nAK,3,thirty,33\nNevadda,4,40,44\nTotal,7,70,77\n"
    options = TableOptions(indicator="missing.cases", year=2025, source="impact-2024", rows="state",
                           columns="case_status")  # fmt: skip
    rows = table_rows(read_dataset(table, "t.csv"), options)
    with pytest.raises(ImportFailed) as failure:
        observations_import(rows=rows, dry_run=True)
    errors = [str(e) for e in failure.value.errors]
    assert (
        "row 2, column \"Resolved\": 'thirty' is not a number (expected e.g. 29,568 / 21.7 million / 91% / 1 in 6)"
        in errors
    )
    assert any(e.startswith('row 3, column "State": unknown member "Nevadda"') for e in errors), errors


# Hypothesis: garbage in any cell of a long file is an error naming a row and one of the file's columns,
# or is taken exactly as written.

GARBAGE = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["", " ", "abc", "2021.7", "-1", "1e5", "NaN", "inf", "0x10", "1,2,3", "=1+1", "@x", "+x", "-x",
                     "\x00", "２０２５", "2025 ", "45%", "1 in 6", "83,000+", "<1%", "2021-02-30", "9" * 40]),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
)  # fmt: skip


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from(LONG_HEADER), garbage=GARBAGE)
def test_garbage_in_any_long_field_is_a_named_error_or_taken_as_written(field, garbage):
    text = garbage.replace("\r", " ").replace("\n", " ")
    data = one(**{field: text, **({"period": "cumulative"} if field == "since" else {})})
    try:
        result = import_long(data)
    except ImportFailed as exc:
        for error in exc.errors:
            assert error.row in (1, 2), error
            assert error.column is None or error.column in LONG_HEADER, error
        return
    (row,) = result.valid_rows
    f = row.fields
    cell = " ".join(text.split())
    if field == "year":
        assert str(f["year"]) == cell.removesuffix(".0")
    elif field == "since" and cell:
        assert str(f["since"]) == cell.removesuffix(".0")
    elif field == "as_of" and cell:
        assert f["as_of"].isoformat() == cell[:10]
    elif field == "value":
        assert f["value_text"] == cell
    elif field in ("note", "quote") and cell:
        assert f[field] == (text.strip() if field == "note" else cell)


# The staff mutations: wrong ids and values are validation messages, never a masked "Unexpected error".

CORRECT = """mutation($id: ID!, $value: Decimal, $reason: String!) {
  correctObservation(id: $id, value: $value, reason: $reason) {
    ... on Observation { id correctedValue } ... on OperationInfo { messages { kind field message } } } }"""
FLAG = """mutation($id: ID!, $note: String!) {
  flagObservation(id: $id, flag: GARBLED, note: $note) {
    ... on Observation { id flag } ... on OperationInfo { messages { kind field message } } } }"""


@pytest.fixture
def editor_client(client):
    user = User.objects.create_user("bad-input-editor", password="pw-for-tests-only")
    user.user_permissions.add(Permission.objects.get(codename="change_observation"))
    client.force_login(user)
    return client


@pytest.fixture
def texas():
    return Observation.objects.get(indicator__code="missing.cases", year=2021, quote__startswith="Texas", value=253)


def mutate(client, query: str, variables: dict) -> dict:
    response = client.post("/graphql", {"query": query, "variables": variables}, content_type="application/json")
    assert response.status_code in (200, 400), response.content
    return response.json()


@pytest.mark.parametrize("bad_id", ["abc", "1.5", "", " ", "-1", "1e3", "99999999999999999999999", "１２"])
def test_a_non_numeric_id_is_a_validation_message(editor_client, bad_id):
    answer = mutate(editor_client, CORRECT, {"id": bad_id, "value": "3", "reason": "r"})
    (message,) = answer["data"]["correctObservation"]["messages"]
    assert (message["kind"], message["field"]) == ("VALIDATION", "id")
    assert "is not an observation id" in message["message"]
    answer = mutate(editor_client, FLAG, {"id": bad_id, "note": "n"})
    assert answer["data"]["flagObservation"]["messages"][0]["field"] == "id"


def test_an_unknown_id_is_named(editor_client):
    answer = mutate(editor_client, CORRECT, {"id": "999999999", "value": "3", "reason": "r"})
    assert answer["data"]["correctObservation"]["messages"] == [
        {"kind": "VALIDATION", "field": "id", "message": "observation #999999999 does not exist"}
    ]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("NaN", "NaN is not a number that can be stored"),
        ("Infinity", "Infinity is not a number that can be stored"),
        ("1e30", "is too large (at most 20 digits before the point)"),
        ("0.00001", "0.00001 has more than 4 decimal places"),
        ("-3", "-3 is out of range for missing.cases (counts cannot be negative)"),
    ],
)
def test_a_correction_that_cannot_be_stored_is_refused_as_given(editor_client, texas, value, message):
    answer = mutate(editor_client, CORRECT, {"id": texas.id, "value": value, "reason": "r"})
    messages = answer["data"]["correctObservation"]["messages"]
    assert messages[0]["kind"] == "VALIDATION"
    assert messages[0]["field"] == "corrected_value"
    assert message in messages[0]["message"]
    texas.refresh_from_db()
    assert (texas.corrected_value, texas.version) == (None, 1)


def test_a_value_that_is_not_a_decimal_is_a_graphql_error_not_a_500(editor_client, texas):
    answer = mutate(editor_client, CORRECT, {"id": texas.id, "value": "forty", "reason": "r"})
    assert "data" not in answer or answer["data"] is None
    assert "Unexpected error" not in json.dumps(answer)


def test_a_flag_note_obeys_the_import_rules(editor_client, texas):
    answer = mutate(editor_client, FLAG, {"id": texas.id, "note": "=HYPERLINK(1)"})
    (problem,) = answer["data"]["flagObservation"]["messages"]
    assert (problem["kind"], problem["field"]) == ("VALIDATION", "note")
    assert "looks like a spreadsheet formula" in problem["message"]


def test_a_nul_in_a_note_is_refused_with_the_request_naming_it(editor_client, texas):
    # The endpoint refuses NUL in any string before the mutation runs (stats.graphql.limits); the
    # validator refuses it too, for the admin and imports (the long-shape cases above).
    answer = mutate(editor_client, FLAG, {"id": texas.id, "note": "a\x00b"})
    assert answer == {"errors": [{"message": "variables.note: a string may not contain NUL (U+0000) or unpaired "
                                             "surrogate characters."}]}  # fmt: skip
    texas.refresh_from_db()
    assert texas.note != "a\x00b"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    observation_id=st.one_of(st.text(max_size=25), st.integers(-(10**25), 10**25).map(str)),
    value=st.one_of(st.none(), GARBAGE),
    reason=st.text(max_size=40),
)
def test_garbage_mutations_answer_data_never_an_unexpected_error(editor_client, observation_id, value, reason):
    answer = mutate(editor_client, CORRECT, {"id": observation_id, "value": value, "reason": reason})
    assert "Unexpected error" not in json.dumps(answer)
    if answer.get("data"):
        result = answer["data"]["correctObservation"]
        if "messages" not in result:  # taken: exactly as given (None removes the correction)
            assert (
                result["correctedValue"] == value
                if value is None
                else Decimal(result["correctedValue"]) == Decimal(value)
            )


def many_row_xlsx(rows: int) -> bytes:
    """An XLSX of ``rows`` tiny rows that packs small (a million rows are about 0.2 MB), written as a
    stream: a spreadsheet program's file holds the same XML."""
    book = openpyxl.Workbook()
    book.active.append(["indicator", "value"])
    empty = io.BytesIO()
    book.save(empty)
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(empty.getvalue())) as source,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as packed,
    ):
        for item in source.infolist():
            if item.filename != "xl/worksheets/sheet1.xml":
                packed.writestr(item, source.read(item))
                continue
            with packed.open(item.filename, "w") as sheet:
                sheet.write(b'<?xml version="1.0" encoding="UTF-8"?>'
                            b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
                            b'<row><c t="inlineStr"><is><t>indicator</t></is></c>'
                            b'<c t="inlineStr"><is><t>value</t></is></c></row>')  # fmt: skip
                row = b'<row><c t="inlineStr"><is><t>missing.cases</t></is></c><c><v>1</v></c></row>'
                for start in range(0, rows, 10_000):
                    sheet.write(row * min(10_000, rows - start))
                sheet.write(b"</sheetData></worksheet>")
    return out.getvalue()


@pytest.fixture(scope="module")
def million_row_xlsx() -> bytes:
    return many_row_xlsx(1_000_000)


def test_a_small_xlsx_of_a_million_rows_is_refused_on_its_unpacked_size_before_it_is_read(million_row_xlsx, settings):
    assert len(million_row_xlsx) < 512 * 1024 < settings.IMPORT_MAX_BYTES
    with pytest.raises(ImportFailed) as failure:
        read_dataset(million_row_xlsx, "many.xlsx")
    assert [str(e) for e in failure.value.errors] == [
        f"the XLSX file unpacks to {unpacked_mb(million_row_xlsx):,} MB, over the size limit of "
        f"{settings.IMPORT_MAX_BYTES // 2**20} MB; split it"
    ]


def test_an_xlsx_over_the_row_limit_is_refused_when_the_limit_is_crossed(million_row_xlsx, settings):
    settings.IMPORT_MAX_BYTES = (unpacked_mb(million_row_xlsx) + 1) * 2**20  # the size would let it in
    settings.IMPORT_MAX_ROWS = 1000
    read = []
    with pytest.raises(ImportFailed, match="the file has more than 1,000 rows, the limit of one import; split it"):
        read.extend(read_dataset(million_row_xlsx, "many.xlsx"))
    assert len(read) == 1000
    assert read[-1] == ["missing.cases", 1]


def unpacked_mb(data: bytes) -> int:
    return sum(item.file_size for item in zipfile.ZipFile(io.BytesIO(data)).infolist()) // 2**20
