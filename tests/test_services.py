"""The one write path: validation, all-or-nothing imports, previews, audited edits."""

from decimal import Decimal

import pytest
from django.apps import apps
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError

from stats.models import ImportRecord, Observation, Restatement, Source, Unit
from stats.services.errors import ConflictError, ImportFailed, RowError, error_summary
from stats.services.observations import (
    ObservationRow,
    observation_correct,
    observation_flag,
    observation_revert,
    observation_update,
    observations_import,
)


@pytest.fixture
def cube(build):
    """A small catalog: one count indicator, one percent indicator, case status and state."""
    topic = build.topic()
    count = build.indicator("test.cases", unit=Unit.COUNT, topic=topic)
    share = build.indicator("test.share", unit=Unit.PERCENT, topic=topic)
    status = build.dimension("test_status", members=["Active", "Resolved"])
    state = build.dimension("test_state")
    build.member(state, "Nevada", aliases=["NV"])
    build.member(state, "Alaska", order=1, aliases=["AK"])
    source = build.source("test-2025", edition=2025)
    return {"count": count, "share": share, "status": status, "state": state, "source": source}


def row(**overrides) -> ObservationRow:
    fields = {"indicator": "test.cases", "source": "test-2025", "year": 2025, "value_text": "12", "quote": "q"}
    return ObservationRow(**{**fields, **overrides})


def test_import_writes_new_rows_and_records_the_import(cube):
    user = User.objects.create_user("editor")
    result = observations_import(
        rows=[row(members={"test_state": "NV"}, value_text="1,234", row=2), row(members={"test_state": "Alaska"})],
        user=user,
        file_name="f.csv",
    )
    assert (result.new, result.changed, result.unchanged) == (2, 0, 0)
    nevada = Observation.objects.get(indicator=cube["count"], member_ids=[cube["state"].members.get(code="nevada").id])
    assert nevada.value == Decimal("1234")
    assert nevada.value_text == "1,234"
    assert result.record.status == ImportRecord.Status.COMMITTED
    assert result.record.user == user
    assert result.record.new == 2


def test_one_invalid_row_and_nothing_is_written(cube):
    before = Observation.objects.count()
    with pytest.raises(ImportFailed) as failure:
        observations_import(
            rows=[row(members={"test_state": "Nevada"}, row=2), row(members={"test_state": "Nevadda"}, row=3)]
        )
    assert Observation.objects.count() == before
    assert [str(e) for e in failure.value.errors] == [
        'row 3, column "test_state": unknown member "Nevadda" of dimension test_state (did you mean "Nevada"?)'
    ]
    assert failure.value.record.status == ImportRecord.Status.FAILED


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"indicator": "test.casez"}, "unknown indicator 'test.casez' (did you mean \"test.cases\""),
        ({"source": "nope"}, "unknown source 'nope'"),
        ({"value_text": "twelve-ish"}, "'twelve-ish' is not a number"),
        ({"value_text": "-5"}, "-5 is out of range for test.cases (counts cannot be negative)"),
        ({"indicator": "test.share", "value_text": "101%"}, "percentages lie between 0 and 100"),
        ({"value_text": "=SUM(A1:A2)"}, "looks like a spreadsheet formula"),
        ({"value_text": "45%"}, "'45%' is a percentage but test.cases is measured in count"),
        ({"year": "20x5"}, "year '20x5' is not a whole number"),
        ({"qualifier": "roughly"}, "unknown qualifier 'roughly'"),
        ({"flag": "dubious"}, "unknown flag 'dubious'"),
        ({"value_text": ""}, "no figure"),
        ({"members": {"nope": "x"}}, "unknown dimension 'nope'"),
        ({"since": 1998}, "since is only for cumulative figures"),
    ],
)
def test_each_bad_input_is_named(cube, overrides, message):
    with pytest.raises(ImportFailed) as failure:
        observations_import(rows=[row(row=7, **overrides)])
    errors = [str(e) for e in failure.value.errors]
    assert any(message in e and e.startswith("row 7") for e in errors), errors


def test_duplicate_rows_in_one_file_are_refused(cube):
    with pytest.raises(ImportFailed, match="row 3: duplicate of row 2"):
        observations_import(rows=[row(row=2), row(row=3, value_text="13")])


def test_changing_existing_data_needs_a_reason(cube):
    observations_import(rows=[row(value_text="12")])
    with pytest.raises(ImportFailed, match=r"conflicts with existing observation #\d+ \(value .*12.* → .*13"):
        observations_import(rows=[row(value_text="13", row=2)])
    result = observations_import(rows=[row(value_text="13")], reason="revised figure from NCMEC")
    assert (result.new, result.changed) == (0, 1)
    assert result.changes[0].before["value"] == Decimal("12")
    assert result.changes[0].after["value"] == Decimal("13")
    assert Observation.objects.get(indicator=cube["count"], member_ids=[]).version == 2


def test_dry_run_previews_and_writes_nothing(cube):
    observations_import(rows=[row(value_text="12")])
    before = Observation.objects.count()
    result = observations_import(
        rows=[row(value_text="14"), row(members={"test_state": "AK"})], reason="preview", dry_run=True
    )
    assert (result.new, result.changed, result.unchanged) == (1, 1, 0)
    assert Observation.objects.count() == before
    assert Observation.objects.get(indicator=cube["count"], member_ids=[]).value == Decimal("12")
    assert result.record.status == ImportRecord.Status.DRY_RUN


def test_importing_the_same_rows_twice_changes_nothing(cube):
    rows = [row(members={"test_state": "NV"}), row(members={"test_state": "AK"})]
    observations_import(rows=rows)
    result = observations_import(rows=rows)
    assert (result.new, result.changed, result.unchanged) == (0, 0, 2)


def test_printings_of_one_fact_become_restatements_of_the_most_precise(cube):
    result = observations_import(
        rows=[
            row(value_text="29,000", qualifier="more_than", quote="more than 29,000 children"),
            row(value_text="29,568", quote="Total | 29,568", from_table=True),
        ],
        merge_restatements=True,
    )
    assert (result.new, result.restatements) == (1, 1)
    obs = Observation.objects.get(indicator=cube["count"])
    assert obs.value_text == "29,568"
    assert list(obs.restatements.values_list("value_text", "qualifier")) == [("29,000", "more_than")]
    assert Restatement.objects.filter(observation=obs).count() == 1


def test_plain_queries_prefer_that_years_impact_report(cube, build):
    fact_sheet = build.source("test-facts", edition=2025, kind=Source.Kind.FACT_SHEET)
    older_report = build.source("test-2024", edition=2024)
    for slug, text in (("test-facts", "1,064"), ("test-2024", "1,060"), ("test-2025", "1,053")):
        observations_import(rows=[row(source=slug, value_text=text)], confirm_years_outside_edition=True)
    preferred = Observation.objects.filter(indicator=cube["count"]).preferred()
    assert [o.source.slug for o in preferred] == ["test-2025"]
    assert Observation.objects.filter(indicator=cube["count"]).count() == 3
    Observation.objects.filter(source__slug="test-2025").delete()  # the database promotes the next one
    assert [o.source for o in Observation.objects.filter(indicator=cube["count"]).preferred()] == [older_report]
    assert fact_sheet.observations.get().is_preferred is False


def test_a_correction_keeps_the_printed_value_and_is_audited(cube):
    observations_import(rows=[row(value_text="12")])
    obs = Observation.objects.get(indicator=cube["count"])
    editor = User.objects.create_user("editor")
    observation_correct(observation_id=obs.id, value=Decimal("21"), reason="digits swapped in print", user=editor)
    obs.refresh_from_db()
    assert (obs.value, obs.corrected_value, obs.correction_reason) == (12, 21, "digits swapped in print")
    event = apps.get_model("stats", "ObservationEvent").objects.filter(pgh_obj=obs, pgh_label="update").get()
    assert event.corrected_value == 21
    assert event.pgh_context.metadata["reason"] == "digits swapped in print"
    assert event.pgh_context.metadata["user"] == editor.id


def test_every_change_needs_a_reason(cube):
    observations_import(rows=[row()])
    obs = Observation.objects.get(indicator=cube["count"])
    with pytest.raises(ValidationError, match="reason is required"):
        observation_update(observation_id=obs.id, changes={"note": "x"}, reason=" ")


def test_an_edit_based_on_a_stale_version_is_refused(cube):
    observations_import(rows=[row()])
    obs = Observation.objects.get(indicator=cube["count"])
    observation_flag(observation_id=obs.id, flag="garbled", note="first editor", expected_version=1)
    with pytest.raises(ConflictError, match="changed by someone else"):
        observation_flag(observation_id=obs.id, flag="", note="second editor", expected_version=1)
    obs.refresh_from_db()
    assert (obs.flag, obs.note, obs.version) == ("garbled", "first editor", 2)


def test_an_edit_out_of_the_unit_range_is_refused(cube):
    observations_import(rows=[row()])
    obs = Observation.objects.get(indicator=cube["count"])
    with pytest.raises(ValidationError, match="counts cannot be negative"):
        observation_correct(observation_id=obs.id, value=Decimal("-3"), reason="r")


def test_revert_restores_an_earlier_state(cube):
    observations_import(rows=[row(value_text="12")])
    obs = Observation.objects.get(indicator=cube["count"])
    observation_correct(observation_id=obs.id, value=Decimal("21"), reason="wrong")
    events = apps.get_model("stats", "ObservationEvent").objects.filter(pgh_obj=obs).order_by("pgh_id")
    created = events.get(pgh_label="insert")
    observation_revert(event_id=created.pgh_id, reason="the correction was wrong")
    obs.refresh_from_db()
    assert obs.corrected_value is None
    assert obs.value == 12
    assert obs.version == 3
    assert events.count() == 3


def test_an_import_is_audited_with_who_and_why(cube):
    editor = User.objects.create_user("importer")
    result = observations_import(rows=[row(members={"test_state": "NV"})], user=editor, reason="2025 report tables")
    obs = Observation.objects.get(indicator=cube["count"])
    event = apps.get_model("stats", "ObservationEvent").objects.get(pgh_obj=obs, pgh_label="insert")
    assert event.pgh_context.metadata["user"] == editor.id
    assert event.pgh_context.metadata["reason"] == "2025 report tables"
    assert event.pgh_context.metadata["import_record"] == result.record.id


def test_a_row_the_database_refuses_aborts_the_whole_import(cube, monkeypatch):
    import stats.services.observations.validation as service

    monkeypatch.setattr(service, "fits_unit", lambda unit, v: True)  # let a negative count reach the database
    before = Observation.objects.count()
    with pytest.raises(ImportFailed, match=r"the database refused the import: value -5.* does not fit the unit count"):
        observations_import(rows=[row(members={"test_state": "NV"}), row(value_text="-5")])
    assert Observation.objects.count() == before


def test_reimporting_printings_with_restatements_is_unchanged_and_a_new_printing_is_a_change(cube):
    printings = [
        row(value_text="29,000", qualifier="more_than", quote="more than 29,000 children"),
        row(value_text="29,568", quote="Total | 29,568", from_table=True),
    ]
    observations_import(rows=printings, merge_restatements=True)
    again = observations_import(rows=printings, merge_restatements=True)
    assert (again.new, again.changed, again.unchanged, again.restatements) == (0, 0, 1, 1)
    extra = [*printings, row(value_text="nearly 30,000", value=Decimal("30000"), qualifier="nearly", quote="q2")]
    with pytest.raises(ImportFailed, match=r"conflicts with existing observation #\d+ \(restatements\)"):
        observations_import(rows=extra, merge_restatements=True)
    changed = observations_import(rows=extra, merge_restatements=True, reason="a third printing")
    assert (changed.new, changed.changed, changed.restatements) == (0, 1, 2)
    obs = Observation.objects.get(indicator=cube["count"])
    assert sorted(obs.restatements.values_list("value_text", flat=True)) == ["29,000", "nearly 30,000"]
    assert obs.version == 2


def test_an_update_writes_every_changed_field_and_rows_may_come_from_a_generator(cube):
    observations_import(rows=[row(members={"test_state": "NV"}, value_text="12")])
    result = observations_import(
        rows=(r for r in [row(members={"test_state": "NV"}, value_text="13", note=" checked ", row=2)]),
        reason="revised",
    )
    assert (result.rows, result.changed) == (1, 1)
    assert result.valid_rows[0].fields["note"] == "checked"
    assert result.changes[0].before["note"] == ""
    obs = Observation.objects.get(indicator=cube["count"])
    assert (obs.value, obs.note, obs.version) == (13, "checked", 2)


def status_table(active="3", resolved="30", total="33", **fields) -> list[ObservationRow]:
    """Nevada's row of a printed table: Active, Resolved and their total."""
    return [
        row(members={"test_state": "NV", **({"test_status": status} if status else {})}, value_text=text, row=2,
            table="T", from_table=True, **fields)
        for status, text in (("Active", active), ("Resolved", resolved), (None, total))
    ]  # fmt: skip


def test_a_total_that_does_not_add_up_is_refused_unless_stored_as_printed_with_a_note(cube):
    with pytest.raises(ImportFailed, match=r"row 2: the parts do not add up: .*sum to 33, total 34 \(difference -1\)"):
        observations_import(rows=status_table(total="34"))
    assert not Observation.objects.filter(indicator=cube["count"]).exists()
    preview = observations_import(rows=status_table(total="34"), dry_run=True)
    assert [str(c) for c in preview.mismatches] == [
        'test-2025 test.cases 2025 in "T": test_status parts of test_state=nevada sum to 33, total 34 (difference -1)'
    ]
    result = observations_import(rows=status_table(total="34"), sum_mismatch_note="the report prints 34")
    assert (result.new, result.flagged, result.mismatches) == (3, 1, [])
    stored = Observation.objects.filter(indicator=cube["count"])
    assert sorted(stored.values_list("value_text", "flag", "note")) == [
        ("3", "", ""), ("30", "", ""), ("34", "sum_mismatch", "the report prints 34")
    ]  # fmt: skip
    assert result.record.options == {"sum_mismatch_note": "the report prints 34"}
    # Re-uploaded as a table file gives it (no flags or notes): the stored flag explains it, nothing to settle.
    again = observations_import(rows=status_table(total="34", unset=frozenset({"flag", "note"})))
    assert (again.changed, again.unchanged, again.mismatches) == (0, 3, [])


def test_figures_for_a_year_outside_the_sources_edition_need_confirming(cube):
    with pytest.raises(ImportFailed) as failure:
        observations_import(rows=[row(year=2024), row(year=2023, members={"test_state": "NV"})])
    assert [str(e) for e in failure.value.errors] == [
        'column "year": figures for 2023, 2024 in test-2025, whose edition is 2025: '
        "confirm that the source prints figures for these years"
    ]
    preview = observations_import(rows=[row(year=2024)], dry_run=True)
    assert preview.years_outside_edition == {"test-2025": (2025, [2024])}
    assert observations_import(rows=[row(year=2024)], confirm_years_outside_edition=True).new == 1


def test_optional_fields_a_re_upload_leaves_empty_keep_what_is_stored(cube):
    observations_import(rows=[row(table="Missing children, 2025", note="checked with NCMEC", flag="garbled")])
    unset = frozenset({"table", "note", "flag"})
    again = observations_import(rows=[row(table="missing.cases 2025", unset=unset)])
    assert (again.changed, again.unchanged) == (0, 1)
    changed = observations_import(rows=[row(value_text="13", unset=unset)], reason="erratum")
    assert [(c.differences) for c in changed.changes] == [[("value_text", "12", "13")]]
    obs = Observation.objects.get(indicator=cube["count"])
    assert (obs.value_text, obs.table, obs.note, obs.flag) == ("13", "Missing children, 2025", "checked with NCMEC",
                                                              "garbled")  # fmt: skip
    cleared = observations_import(rows=[row(value_text="13", note="", flag="")], reason="flag withdrawn")
    assert cleared.changes[0].differences == [("table", "Missing children, 2025", "—"), ("flag", "garbled", "—"),
                                              ("note", "checked with NCMEC", "—")]  # fmt: skip


def test_many_errors_are_listed_up_to_the_limit_then_counted_by_kind():
    errors = [RowError(n, "state", f'unknown member "X{n}" of dimension state') for n in range(2, 502)]
    errors += [RowError(n, "value", f"'{n}x' is not a number") for n in range(600, 603)]
    summary = error_summary(errors, limit=200)
    assert [str(e) for e in summary.listed[:1]] == ['row 2, column "state": unknown member "X2" of dimension state']
    assert (len(summary.listed), summary.unlisted) == (200, 303)
    assert summary.more == [('column "state": unknown member … of dimension state', 300),
                            ('column "value": … is not a number', 3)]  # fmt: skip
    assert summary.lines()[200:] == ["... and 303 more:", '  300 × column "state": unknown member … of dimension state',
                                     '  3 × column "value": … is not a number']  # fmt: skip
    assert error_summary(errors[:3]).more == []
