"""Staff imports through the admin: upload → preview → confirm, all or nothing, clear errors."""

import io

import openpyxl
import pytest
from django.contrib.auth.models import Group, User
from django.core.files.uploadedfile import SimpleUploadedFile

from stats.models import ImportRecord, Observation

STATES_2025 = "MISSING STATE,ACTIVE,RESOLVED,GRAND TOTAL\nAK,3,30,33\nNevada,4,40,44\nTotal,7,70,77\n"
TABLE = {"shape": "table", "indicator": "missing.cases", "year": "2025", "source": "impact-2024",
         "rows": "state", "columns": "case_status"}  # fmt: skip


def upload(client, content: bytes | str, name: str = "states.csv", **fields):
    data = content.encode() if isinstance(content, str) else content
    return client.post("/admin/stats/observation/import/", {"file": SimpleUploadedFile(name, data), **fields})


def errors_of(response) -> list[str]:
    return response.context["errors"]


def test_preview_then_confirm_writes_the_table(client, editor):
    before = Observation.objects.count()
    preview = upload(client, STATES_2025, **TABLE)
    result = preview.context["result"]
    assert (result.new, result.changed, result.unchanged) == (9, 0, 0)
    assert preview.context["unexplained"] == []
    assert Observation.objects.count() == before
    confirm = client.post(
        "/admin/stats/observation/import/", {**TABLE, "stored": preview.context["stored"], "confirm": "1"}
    )
    assert confirm.status_code == 302
    assert Observation.objects.count() == before + 9
    nevada = Observation.objects.get(year=2025, quote__startswith="Nevada", member_ids__len=2, value=40)
    assert nevada.value_text == "40"
    record = ImportRecord.objects.filter(status="committed").latest("created_at")
    assert (record.user, record.file_name, record.new, record.shape) == (editor, "states.csv", 9, "table")
    assert len(record.checksum) == 64


def test_the_preview_checks_the_totals(client, editor):
    preview = upload(client, STATES_2025.replace("Total,7,70,77", "Total,7,71,78"), **TABLE)
    assert [str(c) for c in preview.context["unexplained"]] == [
        'impact-2024 missing.cases 2025 in "missing.cases 2025 by state and case_status": state parts of '
        "case_status=resolved sum to 70, total 71 (difference -1)",
        'impact-2024 missing.cases 2025 in "missing.cases 2025 by state and case_status": state parts sum to 77, '
        "total 78 (difference -1)",
    ]


@pytest.mark.parametrize(
    ("content", "fields", "message"),
    [
        (STATES_2025.replace("Nevada", "Nevadda"), TABLE,
         'row 3, column "MISSING STATE": unknown member "Nevadda" of dimension state (did you mean "Nevada"?)'),
        (STATES_2025.replace("4,40,44", "4,forty,44"), TABLE, "row 3, column \"RESOLVED\": 'forty' is not a number"),
        (STATES_2025.replace("4,40,44", "-4,40,44"), TABLE, "counts cannot be negative"),
        (STATES_2025.replace("4,40,44", "=1+3,40,44"), TABLE, "looks like a spreadsheet formula"),
        (STATES_2025.replace("AK,3,30,33", "AK,3,30"), TABLE, "row 2: 3 cells but the header has 4 columns"),
        (STATES_2025 + "AK,3,30,33\n", TABLE, "row 5: duplicate of row 2"),
        ("", TABLE, "the file is empty"),
        ("MISSING STATE,ACTIVE\n", TABLE, "the file has a header but no rows"),
        ("indicator,source,year\nmissing.cases,impact-2024,2025\n", {"shape": "long"},
         'row 1, column "value": missing column'),
        ("indicator,source,year,value,colour\nmissing.cases,impact-2024,2025,5,red\n", {"shape": "long"},
         'row 1, column "colour": unknown column'),
        ("indicator,source,year,value\nmissing.casez,impact-2024,2025,5\n", {"shape": "long"},
         "row 2, column \"indicator\": unknown indicator 'missing.casez'"),
        ("indicator,source,year,value\nmissing.cases_share,impact-2024,2025,101%\n", {"shape": "long"},
         "percentages lie between 0 and 100"),
    ],
)  # fmt: skip
def test_bad_input_is_named_and_nothing_is_written(client, editor, content, fields, message):
    before = Observation.objects.count()
    response = upload(client, content, **fields)
    assert any(message in e for e in errors_of(response)), errors_of(response)
    assert Observation.objects.count() == before


def test_a_row_that_conflicts_with_existing_data_needs_a_reason(client, editor):
    fields = {"shape": "long"}
    content = "indicator,source,year,state,case_status,value\nmissing.cases,impact-2021,2021,Texas,Active,254\n"
    response = upload(client, content, **fields)
    assert "conflicts with existing observation" in errors_of(response)[0]
    assert 'value 253 → 254, value_text "253" → "254"' in errors_of(response)[0]
    preview = upload(client, content, reason="NCMEC's erratum", **fields)
    assert preview.context["result"].changed == 1


def test_wrong_encoding_is_named(client, editor):
    latin1 = "MISSING STATE,ACTIVE,RESOLVED,GRAND TOTAL\nAK,3,30,33\nTotal,3,30,33\nCañon,1,1,2\n".encode("latin-1")
    assert errors_of(upload(client, latin1, **TABLE)) == [
        "row 4: the file is not UTF-8 text; save it as CSV UTF-8 (or XLSX) and retry"
    ]


def test_a_file_over_the_size_limit_is_refused(client, editor, settings):
    settings.IMPORT_MAX_BYTES = 100
    assert errors_of(upload(client, STATES_2025 * 5, **TABLE)) == ["the file is over the size limit of 0 MB; split it"]


def test_a_file_over_the_row_limit_is_refused(client, editor, settings):
    settings.IMPORT_MAX_ROWS = 2
    assert errors_of(upload(client, STATES_2025, **TABLE)) == ["the file has 3 rows, over the limit of 2"]


def test_an_unsupported_file_type_is_refused(client, editor):
    assert errors_of(upload(client, "x", name="states.txt", **TABLE)) == [
        '"states.txt" is not a CSV, XLSX or JSON file'
    ]


def test_xlsx_and_json_files_import_too(client, editor):
    book = openpyxl.Workbook()
    for line in STATES_2025.strip().splitlines():
        book.active.append([int(c) if c.isdigit() else c for c in line.split(",")])
    xlsx = io.BytesIO()
    book.save(xlsx)
    assert upload(client, xlsx.getvalue(), name="states.xlsx", **TABLE).context["result"].new == 9
    json_rows = '[{"indicator": "missing.cases", "source": "impact-2024", "year": 2025, "state": "AK", "value": "33"}]'
    assert upload(client, json_rows, name="facts.json", shape="long").context["result"].new == 1


def test_a_viewer_cannot_import(client, db):
    viewer = User.objects.create_user("viewer", password="pw-for-tests-only", is_staff=True)
    viewer.groups.add(Group.objects.get(name="Viewer"))
    client.force_login(viewer)
    assert upload(client, STATES_2025, **TABLE).status_code == 403
    assert b"import_link" not in client.get("/admin/stats/observation/").content
