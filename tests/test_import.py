"""Staff imports through the admin: upload → preview → confirm, all or nothing, clear errors."""

import io
from datetime import timedelta

import openpyxl
import pytest
from django.contrib.auth.models import Group, User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from stats.models import Flag, ImportPreview, ImportPreviewPart, ImportRecord, Observation, Source
from stats.services.observations.previews import preview_file

STATES_2025 = "MISSING STATE,ACTIVE,RESOLVED,GRAND TOTAL\nAK,3,30,33\nNevada,4,40,44\nTotal,7,70,77\n"
MISMATCHED = STATES_2025.replace("Nevada,4,40,44", "Nevada,4,40,45").replace("Total,7,70,77", "Total,7,70,78")
TABLE = {"shape": "table", "indicator": "missing.cases", "year": "2025", "source": "impact-2025",
         "rows": "state", "columns": "case_status"}  # fmt: skip
IMPORT = "/admin/stats/observation/import/"


@pytest.fixture(autouse=True)
def impact_2025(db):
    return Source.objects.create(
        slug="impact-2025", title="Our 2025 Impact", kind="impact_report", edition=2025, document="not-yet.txt"
    )


def upload(client, content: bytes | str, name: str = "states.csv", **fields):
    data = content.encode() if isinstance(content, str) else content
    return client.post(IMPORT, {"file": SimpleUploadedFile(name, data), **fields})


def confirm(client, preview, **fields):
    """Confirm the preview a page offered, as its form posts it."""
    stored = preview.context["preview"]
    return client.post(IMPORT, {"preview": stored.id, "checksum": stored.checksum, "confirm": "1", **fields})


def errors_of(response) -> list[str]:
    """The errors the page lists (the import's, or the upload form's own)."""
    if "import_errors" in response.context:
        return [str(e) for e in response.context["import_errors"].listed]
    return [str(e) for field in response.context["form"].errors.values() for e in field]


def test_preview_then_confirm_writes_the_table(client, editor):
    before = Observation.objects.count()
    preview = upload(client, STATES_2025, **TABLE)
    result = preview.context["result"]
    assert (result.new, result.changed, result.unchanged) == (9, 0, 0)
    assert result.mismatches == []
    assert Observation.objects.count() == before
    assert ImportPreview.objects.filter(user=editor).count() == 1
    response = confirm(client, preview)
    assert response.status_code == 302
    assert Observation.objects.count() == before + 9
    assert not ImportPreview.objects.exists()  # confirmed: the stored file is gone
    nevada = Observation.objects.get(year=2025, quote__startswith="Nevada", member_ids__len=2, value=40)
    assert nevada.value_text == "40"
    record = ImportRecord.objects.filter(status="committed").latest("created_at")
    assert (record.user, record.file_name, record.new, record.shape) == (editor, "states.csv", 9, "table")
    assert len(record.checksum) == 64
    assert confirm(client, preview).context["import_errors"].listed[0].message.startswith("this preview is not yours")


def test_the_preview_shows_each_figure_with_its_state_and_status(client, editor):
    page = upload(client, STATES_2025, **TABLE)
    html = page.content.decode()
    figures = page.context["new_figures"]
    assert [d.code for d in page.context["dimensions"]] == ["case_status", "state"]
    shown = {(f.labels, f.printed) for f in figures}
    assert (("Active", "Nevada"), "4") in shown
    assert (("Resolved", "Alaska"), "30") in shown
    assert (("Total", "Nevada"), "44") in shown
    assert (("Total", "Total"), "77") in shown
    assert {(f.indicator, f.year, f.source) for f in figures} == {("missing.cases", 2025, "impact-2025")}
    assert "<th>State/territory</th>" in html
    assert "<td>Nevada</td>" in html


def test_a_change_is_shown_as_printed(client, editor):
    upload_and_confirm(client, STATES_2025)
    erratum = STATES_2025.replace("Nevada,4,40,44", "Nevada,4,41,45").replace("Total,7,70,77", "Total,7,71,78")
    preview = upload(client, erratum, reason="NCMEC erratum", **TABLE)
    result = preview.context["result"]
    assert (result.new, result.changed, result.unchanged) == (0, 6, 3)  # Nevada's and the Total row's cells
    changed = {f.labels: (f.printed, f.also) for f in preview.context["changed_figures"]}
    assert changed[("Resolved", "Nevada")] == ("40 → 41", "quote: Nevada | 4 | 40 | 44 → Nevada | 4 | 41 | 45")
    assert changed[("Active", "Nevada")] == ("4", "quote: Nevada | 4 | 40 | 44 → Nevada | 4 | 41 | 45")
    assert changed[("Total", "Total")][0] == "77 → 78"
    assert "Decimal" not in preview.content.decode()


def upload_and_confirm(client, content, **fields):
    response = confirm(client, upload(client, content, **{**TABLE, **fields}))
    assert response.status_code == 302, errors_of(response)
    return response


def test_re_uploading_the_same_figures_changes_nothing_even_without_the_title(client, editor):
    upload_and_confirm(client, STATES_2025, title="Missing children by state, 2025")
    again = upload(client, STATES_2025, **TABLE)
    assert (again.context["result"].changed, again.context["result"].unchanged) == (0, 9)
    assert "<b>0</b> changed" in again.content.decode()
    assert set(Observation.objects.filter(year=2025).values_list("table", flat=True)) == {
        "Missing children by state, 2025"
    }


def test_a_total_that_does_not_add_up_is_refused_until_flagged_with_a_note(client, editor):
    preview = upload(client, MISMATCHED, **TABLE)
    assert {str(c) for c in preview.context["result"].mismatches} == {
        'impact-2025 missing.cases 2025 in "missing.cases 2025 by state and case_status": case_status parts of '
        "state=NV sum to 44, total 45 (difference -1)",
        'impact-2025 missing.cases 2025 in "missing.cases 2025 by state and case_status": case_status parts sum to '
        "77, total 78 (difference -1)",
    }
    assert 'name="sum_mismatch"' in preview.content.decode()
    refused = confirm(client, preview)
    assert refused.status_code == 200
    assert any("the parts do not add up" in e for e in errors_of(refused)), errors_of(refused)
    assert not Observation.objects.filter(year=2025).exists()
    assert refused.context["result"].new == 9  # the same preview again, to settle
    no_note = confirm(client, preview, sum_mismatch="on", sum_mismatch_note="  ")
    assert errors_of(no_note) == ["Say in the note why the totals are stored as printed."]
    assert not Observation.objects.filter(year=2025).exists()
    done = confirm(client, preview, sum_mismatch="on", sum_mismatch_note="the report prints 45; parts as printed")
    assert done.status_code == 302
    flagged = Observation.objects.filter(year=2025, flag=Flag.SUM_MISMATCH)
    assert sorted((o.value_text, o.note) for o in flagged) == [
        ("45", "the report prints 45; parts as printed"),
        ("78", "the report prints 45; parts as printed"),
    ]
    call_command("check_data", stdout=io.StringIO())  # raises CommandError on an unexplained mismatch
    again = upload(client, MISMATCHED, **TABLE)
    assert (again.context["result"].changed, again.context["result"].mismatches) == (0, [])


def test_a_year_outside_the_sources_edition_asks_for_confirmation(client, editor):
    preview = upload(client, STATES_2025, **{**TABLE, "source": "impact-2024"})
    assert preview.context["result"].years_outside_edition == {"impact-2024": (2024, [2025])}
    refused = confirm(client, preview)
    assert errors_of(refused) == [
        'column "year": figures for 2025 in impact-2024, whose edition is 2024: '
        "confirm that the source prints figures for these years"
    ]
    assert not Observation.objects.filter(year=2025).exists()
    assert confirm(client, preview, confirm_years="on").status_code == 302
    assert Observation.objects.filter(year=2025, source__slug="impact-2024").count() == 9


def test_a_confirm_reads_only_the_uploaders_own_preview(client, editor, tmp_path):
    preview = upload(client, STATES_2025, **TABLE)
    stored = preview.context["preview"]
    other = User.objects.create_user("other-editor", password="pw-for-tests-only", is_staff=True)
    other.groups.add(Group.objects.get(name="Data editor"))
    intruder = Client()
    intruder.force_login(other)
    for fields in (
        {"preview": stored.id, "checksum": stored.checksum},  # someone else's
        {"preview": stored.id, "checksum": "0" * 64},  # a wrong checksum
        {"preview": stored.id, "checksum": "../../../etc/passwd"},  # a path is never read
        {"stored": f"{'0' * 64}:/etc/passwd", **TABLE},  # the old form's path field
    ):
        response = intruder.post(IMPORT, {**fields, "confirm": "1"})
        assert response.status_code == 200
        assert "this preview is not yours" in errors_of(response)[0], fields
        assert "root:" not in response.content.decode()
    assert not Observation.objects.filter(year=2025).exists()
    ImportPreview.objects.filter(id=stored.id).update(created_at=timezone.now() - timedelta(days=1, seconds=1))
    assert "has expired" in errors_of(confirm(client, preview))[0]
    out = io.StringIO()
    call_command("expire_import_previews", stdout=out)
    assert (out.getvalue().strip(), ImportPreview.objects.count()) == ("deleted 1 expired import preview(s)", 0)


def stored_file(preview: ImportPreview) -> bytes:
    with preview_file(preview) as handle:
        return handle.read()


def test_a_preview_stores_the_file_in_the_database_bounded_by_the_size_limit(client, editor, settings):
    upload(client, STATES_2025, **TABLE)
    assert stored_file(ImportPreview.objects.get()) == STATES_2025.encode()
    settings.IMPORT_MAX_BYTES = 100
    response = upload(client, STATES_2025 * 5, **TABLE)
    assert "the file is over the size limit of 0 MB; split it" in response.content.decode()
    assert ImportPreview.objects.count() == 1


@pytest.mark.parametrize("part_bytes", [100, 1000, 10**6])
def test_a_stored_file_is_kept_in_parts_and_confirmed_as_uploaded(client, editor, monkeypatch, part_bytes):
    monkeypatch.setattr(ImportPreviewPart, "PART_BYTES", part_bytes)
    text = STATES_2025.replace("\n", "\r\n")  # bytes as uploaded: line ends kept
    page = upload(client, text, **TABLE)
    preview = page.context["preview"]
    parts = list(preview.parts.order_by("number").values_list("data", flat=True))
    assert len(parts) == -(-len(text.encode()) // part_bytes)
    assert all(len(p) == part_bytes for p in parts[:-1])
    assert (b"".join(parts), preview.size) == (text.encode(), len(text.encode()))
    assert page.context["result"].new == 9
    assert confirm(client, page).status_code == 302
    assert Observation.objects.filter(year=2025, source__slug=TABLE["source"]).count() == 9
    assert not ImportPreviewPart.objects.exists()  # confirmed: the parts went with the preview


def test_a_file_that_fails_its_preview_is_not_kept(client, editor):
    negative = "indicator,source,year,value,state\nmissing.cases,impact-2025,2025,-1,Texas\n"
    response = upload(client, negative, shape="long")
    assert response.context["import_errors"].total == 1
    assert (ImportPreview.objects.count(), ImportPreviewPart.objects.count()) == (0, 0)


def test_thousands_of_bad_rows_list_200_errors_then_counts_by_kind(client, editor):
    header = "indicator,source,year,value,state\n"
    bad = "".join(f"missing.cases,impact-2025,2025,{n},Nowhere{n}\n" for n in range(3000))
    bad += "".join(f"missing.cases,impact-2025,2025,-{n + 1},Texas\n" for n in range(10))
    response = upload(client, header + bad, shape="long")
    summary = response.context["import_errors"]
    assert (len(summary.listed), summary.total) == (200, 3010)
    assert summary.more == [
        ('column "state": unknown member … of dimension state', 2800),
        ('column "value": … is out of range for missing.cases (counts cannot be negative)', 10),
    ]
    assert len(response.content) < 100_000


def test_the_preview_checks_the_totals(client, editor):
    preview = upload(client, STATES_2025.replace("Total,7,70,77", "Total,7,71,78"), **TABLE)
    assert [str(c) for c in preview.context["result"].mismatches] == [
        'impact-2025 missing.cases 2025 in "missing.cases 2025 by state and case_status": state parts of '
        "case_status=resolved sum to 70, total 71 (difference -1)",
        'impact-2025 missing.cases 2025 in "missing.cases 2025 by state and case_status": state parts sum to 77, '
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
    assert "value 253 → 254, value_text 253 → 254" in errors_of(response)[0]
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
    assert errors_of(upload(client, STATES_2025, **TABLE)) == [
        "the file has more than 2 rows, the limit of one import; split it"
    ]


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
