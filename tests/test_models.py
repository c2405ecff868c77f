"""The database itself enforces the warehouse's integrity rules, whatever the entry point."""

from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction

from stats.models import DataVersion, Dimension, Flag, Member, MemberAlias, Observation, Period, Unit


def test_one_observation_per_fact_and_source(build):
    indicator, source = build.indicator(), build.source()
    dim = build.dimension(members=["Active", "Resolved"])
    active = dim.members.get(code="active")
    build.observation(indicator, source, 2021, "5", members=[active])
    with pytest.raises(IntegrityError, match="observation_fact_unique_per_source"):
        build.observation(indicator, source, 2021, "6", members=[active])


def test_same_fact_from_another_source_is_another_observation(build):
    indicator = build.indicator()
    build.observation(indicator, build.source(), 2021, "5")
    build.observation(indicator, build.source(), 2021, "6")
    assert Observation.objects.filter(indicator=indicator).count() == 2


def test_same_fact_for_another_period_is_another_observation(build):
    indicator, source = build.indicator(), build.source()
    build.observation(indicator, source, 2021, "5")
    build.observation(indicator, source, 2021, "500", period=Period.CUMULATIVE, since=1998)
    assert Observation.objects.filter(indicator=indicator).count() == 2


def test_breakdown_is_canonical_whatever_the_order(build):
    indicator, source = build.indicator(), build.source()
    a = build.dimension(members=["A1"]).members.get()
    b = build.dimension(members=["B1"]).members.get()
    build.observation(indicator, source, 2021, "1", members=[b, a])
    with pytest.raises(IntegrityError, match="observation_fact_unique_per_source"):
        build.observation(indicator, source, 2021, "2", members=[a, b])


def test_breakdown_fills_dimensions(build):
    a = build.dimension(members=["A1"])
    b = build.dimension(members=["B1"])
    obs = build.observation(build.indicator(), build.source(), members=[b.members.get(), a.members.get()])
    obs.refresh_from_db()
    assert obs.member_ids == sorted([a.members.get().id, b.members.get().id])
    assert obs.dimension_ids == sorted([a.id, b.id])


def test_two_members_of_one_dimension_are_refused(build):
    dim = build.dimension(members=["Active", "Resolved"])
    with pytest.raises(IntegrityError, match="two members of one dimension"):
        build.observation(build.indicator(), build.source(), members=list(dim.members.all()))


def test_a_member_named_twice_is_refused(build):
    member = build.dimension(members=["Active"]).members.get()
    with pytest.raises(IntegrityError, match="names a member twice"):
        build.observation(build.indicator(), build.source(), members=[member, member])


def test_unknown_member_id_is_refused(build):
    obs = build.observation(build.indicator(), build.source())
    obs.member_ids = [987654321]
    with pytest.raises(IntegrityError, match="does not exist"):
        obs.save()


def test_member_in_use_cannot_be_deleted_or_moved(build):
    dim = build.dimension(members=["Active"])
    member = dim.members.get()
    build.observation(build.indicator(), build.source(), members=[member])
    with pytest.raises(IntegrityError, match="is used by observations"), transaction.atomic():
        member.delete()
    member.dimension = build.dimension()
    with pytest.raises(IntegrityError, match="is used by observations"):
        member.save()


def test_counts_cannot_be_negative(build):
    with pytest.raises(IntegrityError, match="does not fit the unit count"):
        build.observation(build.indicator(unit=Unit.COUNT), build.source(), value="-1")


def test_percentages_lie_between_0_and_100(build):
    indicator = build.indicator(unit=Unit.PERCENT)
    build.observation(indicator, build.source(), value="100")
    with pytest.raises(IntegrityError, match="does not fit the unit percent"):
        build.observation(indicator, build.source(), value="100.5")


def test_percent_change_may_exceed_100(build):
    obs = build.observation(build.indicator(unit=Unit.PERCENT_CHANGE), build.source(), value="300")
    assert obs.value == Decimal("300")


def test_corrected_value_obeys_the_unit_too(build):
    obs = build.observation(build.indicator(unit=Unit.PERCENT), build.source(), value="50")
    obs.corrected_value, obs.correction_reason = Decimal("150"), "typo"
    with pytest.raises(IntegrityError, match="corrected value"):
        obs.save()


def test_changing_an_indicator_unit_rechecks_its_observations(build):
    indicator = build.indicator(unit=Unit.COUNT)
    build.observation(indicator, build.source(), value="250")
    indicator.unit = Unit.PERCENT
    with pytest.raises(IntegrityError, match="do not fit the unit percent"):
        indicator.save()


def test_a_value_is_required_unless_flagged_missing(build):
    indicator = build.indicator()
    with pytest.raises(IntegrityError, match="observation_value_or_missing_flag"), transaction.atomic():
        build.observation(indicator, build.source(), value=None)
    obs = build.observation(indicator, build.source(), value=None, flag=Flag.MISSING_VALUE)
    assert obs.value is None


def test_a_correction_needs_a_reason(build):
    obs = build.observation(build.indicator(), build.source())
    obs.corrected_value = Decimal("3")
    with pytest.raises(IntegrityError, match="observation_correction_has_reason"):
        obs.save()


def test_since_is_only_for_cumulative_figures(build):
    with pytest.raises(IntegrityError, match="observation_since_cumulative"):
        build.observation(build.indicator(), build.source(), since=1998)


def test_unknown_qualifier_is_refused(build):
    with pytest.raises(IntegrityError, match="observation_qualifier_valid"):
        build.observation(build.indicator(), build.source(), qualifier="roughly")


def test_one_spelling_names_one_member_per_dimension(build):
    dim = build.dimension(members=["Alaska"])
    other = build.member(dim, "Arizona", order=1)
    with pytest.raises(IntegrityError, match="alias_unique_in_dimension"):
        MemberAlias.objects.create(member=other, dimension=dim, alias="ALASKA")


def test_same_spelling_may_name_members_of_different_dimensions(build):
    build.dimension(members=["Unknown"])
    build.dimension(members=["Unknown"])
    assert MemberAlias.objects.filter(normalized="unknown").count() >= 2


def test_every_write_bumps_the_data_version_and_reads_do_not(build):
    before = DataVersion.current()
    list(Observation.objects.all()[:5])
    assert DataVersion.current() == before
    build.observation(build.indicator(), build.source())
    assert DataVersion.current() > before


def test_a_rolled_back_write_leaves_the_data_version(build):
    indicator, source = build.indicator(), build.source()
    before = DataVersion.current()

    def write_then_fail():
        with transaction.atomic():
            Observation.objects.create(
                indicator=indicator, source=source, year=2020, value=1, value_text="1", quote="q"
            )
            raise RuntimeError("abort")

    with pytest.raises(RuntimeError):
        write_then_fail()
    assert DataVersion.current() == before


def display_order(observations) -> list[int]:
    """Ids by breakdown in display order: per member (dimension order, dimension code, member order, id)."""

    def key(obs):
        members = Member.objects.filter(id__in=obs.member_ids).select_related("dimension")
        return sorted((m.dimension.order, m.dimension.code, m.order, m.id) for m in members), obs.id

    return [obs.id for obs in sorted(observations, key=key)]


def stored_order(indicator) -> list[int]:
    return list(
        Observation.objects.filter(indicator=indicator).order_by("member_order", "id").values_list("id", flat=True)
    )


@pytest.fixture
def breakdowns(build):
    """Observations of one indicator over state × status, with totals; ids deliberately out of display order."""
    indicator, source = build.indicator(), build.source()
    status = build.dimension("zz_status")
    resolved, active = build.member(status, "Resolved", order=1), build.member(status, "Active", order=0)
    state = build.dimension("aa_state")
    nevada, alaska = build.member(state, "Nevada", order=2), build.member(state, "Alaska", order=1)
    breakdowns = [
        [],
        [resolved],
        [active],
        [nevada],
        [alaska],
        [nevada, resolved],
        [alaska, active],
        [alaska, resolved],
    ]
    observations = [build.observation(indicator, source, 2021, "1", members=b) for b in breakdowns]
    return {"indicator": indicator, "observations": observations, "state": state, "status": status,
            "nevada": nevada, "alaska": alaska, "active": active, "resolved": resolved}  # fmt: skip


def test_the_database_stores_the_breakdown_display_order(breakdowns):
    ind = breakdowns["indicator"]
    assert stored_order(ind) == display_order(breakdowns["observations"])
    assert stored_order(ind)[0] == breakdowns["observations"][0].id  # the grand total first


def test_reordering_a_member_reorders_its_observations(breakdowns):
    ind, nevada = breakdowns["indicator"], breakdowns["nevada"]
    before = stored_order(ind)
    nevada.order = 0
    nevada.save()
    after = stored_order(ind)
    assert after != before
    assert after == display_order(Observation.objects.filter(indicator=ind))


def test_reordering_or_recoding_a_dimension_reorders_its_observations(breakdowns):
    ind, status, state = breakdowns["indicator"], breakdowns["status"], breakdowns["state"]
    before = stored_order(ind)
    status.order = 0
    state.order = 1
    Dimension.objects.bulk_update([status, state], ["order"])
    assert stored_order(ind) != before
    assert stored_order(ind) == display_order(Observation.objects.filter(indicator=ind))
    state.order = 0
    state.code = "zzz_state"  # equal order: the code decides
    state.save()
    assert stored_order(ind) == display_order(Observation.objects.filter(indicator=ind))


def test_changing_the_breakdown_recomputes_the_order(breakdowns):
    ind, observations = breakdowns["indicator"], breakdowns["observations"]
    nevada_resolved = observations[5]
    nevada_resolved.member_ids = [breakdowns["active"].id, breakdowns["nevada"].id]
    nevada_resolved.save()
    Observation.objects.filter(id=observations[1].id).update(
        member_ids=[breakdowns["nevada"].id, breakdowns["resolved"].id]
    )
    assert stored_order(ind) == display_order(Observation.objects.filter(indicator=ind))


def test_the_stored_order_cannot_be_written_by_hand(breakdowns):
    ind = breakdowns["indicator"]
    expected = stored_order(ind)
    Observation.objects.filter(indicator=ind).update(member_order="")
    assert stored_order(ind) == expected
    assert not Observation.objects.filter(indicator=ind, member_order="").exclude(member_ids=[]).exists()


def test_rows_copied_in_get_the_order_too(breakdowns, build):
    from django.db import connection

    ind, source = breakdowns["indicator"], build.source()
    columns = "indicator_id, source_id, year, member_ids, value, quote"
    with connection.cursor() as cursor, cursor.cursor.copy(f"COPY stats_observation ({columns}) FROM STDIN") as copy:
        for m in ("alaska", "nevada"):
            copy.write_row((ind.id, source.id, 2022, [breakdowns[m].id, breakdowns["active"].id], 1, "copied"))
    copied = Observation.objects.filter(indicator=ind, year=2022)
    assert all(o.member_order for o in copied)
    assert stored_order(ind) == display_order(Observation.objects.filter(indicator=ind))


# is_preferred is kept by the database (migration 0010): exactly one preferred figure per fact.


def preferred_by_rule(indicator) -> dict[tuple, int]:
    """The rule of docs/data.md worked out in Python: fact key -> the observation plain queries return."""
    best: dict[tuple, tuple] = {}
    for o in Observation.objects.filter(indicator=indicator).select_related("source"):
        s = o.source
        rank = (0 if s.kind == "impact_report" and s.edition == o.year else 1 if s.kind == "impact_report" else 2,
                -s.edition, s.id)  # fmt: skip
        key = (o.year, o.period, o.since, tuple(o.member_ids))
        if key not in best or rank < best[key][0]:
            best[key] = (rank, o.id)
    return {key: found[1] for key, found in best.items()}


def stored_preferred(indicator) -> dict[tuple, int]:
    found: dict[tuple, int] = {}
    for o in Observation.objects.filter(indicator=indicator, is_preferred=True):
        key = (o.year, o.period, o.since, tuple(o.member_ids))
        assert key not in found, f"two preferred observations for {key}"
        found[key] = o.id
    return found


def sql(statement: str, params=()) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(statement, params)


@pytest.fixture
def three_printings(build):
    """One fact printed by a fact sheet, last year's report and the year's own report (raw SQL inserts)."""
    indicator = build.indicator()
    sources = {
        "sheet": build.source(edition=2025, kind="fact_sheet"),
        "older": build.source(edition=2024),
        "own": build.source(edition=2025),
    }
    for source in sources.values():
        # Each writer claims its row is preferred: the database decides.
        sql("""INSERT INTO stats_observation (indicator_id, source_id, year, period, member_ids, value, value_text,
                 quote, is_preferred) VALUES (%s, %s, 2025, 'annual', '{}', 1, '1', 'q', true)""",
            [indicator.id, source.id])  # fmt: skip
    return indicator, sources


def test_the_database_prefers_the_years_own_report_whatever_the_inserts_claim(three_printings):
    indicator, sources = three_printings
    assert stored_preferred(indicator) == preferred_by_rule(indicator)
    assert Observation.objects.get(indicator=indicator, is_preferred=True).source == sources["own"]


def test_changing_a_sources_kind_or_edition_moves_the_preference(three_printings):
    indicator, sources = three_printings
    sql("UPDATE stats_source SET kind = 'fact_sheet' WHERE id = %s", [sources["own"].id])
    assert Observation.objects.get(indicator=indicator, is_preferred=True).source == sources["older"]
    sql("UPDATE stats_source SET edition = 2023 WHERE id = %s", [sources["older"].id])
    sql("UPDATE stats_source SET kind = 'impact_report', edition = 2026 WHERE id = %s", [sources["sheet"].id])
    assert stored_preferred(indicator) == preferred_by_rule(indicator)
    assert Observation.objects.get(indicator=indicator, is_preferred=True).source == sources["sheet"]


def test_deleting_the_preferred_figure_promotes_the_next(three_printings):
    indicator, sources = three_printings
    sql("DELETE FROM stats_observation WHERE indicator_id = %s AND source_id = %s", [indicator.id, sources["own"].id])
    assert Observation.objects.get(indicator=indicator, is_preferred=True).source == sources["older"]
    Observation.objects.filter(indicator=indicator, source=sources["older"]).delete()
    assert Observation.objects.get(indicator=indicator, is_preferred=True).source == sources["sheet"]


def test_moving_a_figure_to_another_fact_keeps_one_preferred_in_both(three_printings, build):
    indicator, sources = three_printings
    build.observation(indicator, sources["older"], 2024, "7")
    # The year's report's figure moves onto 2024, where last year's report is preferred: both facts are recomputed.
    sql("UPDATE stats_observation SET year = 2024 WHERE indicator_id = %s AND source_id = %s",
        [indicator.id, sources["sheet"].id])  # fmt: skip
    sql("UPDATE stats_observation SET year = 2024 WHERE indicator_id = %s AND source_id = %s AND year = 2025",
        [indicator.id, sources["own"].id])  # fmt: skip
    assert stored_preferred(indicator) == preferred_by_rule(indicator)
    assert len(stored_preferred(indicator)) == 2


def test_is_preferred_cannot_be_set_by_hand(three_printings):
    indicator, sources = three_printings
    own = Observation.objects.get(indicator=indicator, source=sources["own"])
    sql("UPDATE stats_observation SET is_preferred = false WHERE id = %s", [own.id])
    own.refresh_from_db()
    assert own.is_preferred  # put back by the database
    with pytest.raises(IntegrityError, match="observation_one_preferred_per_fact"), transaction.atomic():
        sql("UPDATE stats_observation SET is_preferred = true WHERE indicator_id = %s", [indicator.id])
    assert stored_preferred(indicator) == preferred_by_rule(indicator)


def test_many_facts_in_one_statement_each_get_one_preferred(build):
    indicator = build.indicator()
    dim = build.dimension(members=[f"M{i}" for i in range(6)])
    members = list(dim.members.order_by("order"))
    sources = [build.source(edition=e, kind=k) for e, k in ((2020, "impact_report"), (2021, "impact_report"),
                                                             (2021, "fact_sheet"))]  # fmt: skip
    sql("""INSERT INTO stats_observation (indicator_id, source_id, year, period, member_ids, value, value_text, quote)
           SELECT %s, s, y, 'annual', ARRAY[m], 1, '1', 'q'
           FROM unnest(%s::bigint[]) s, generate_series(2019, 2021) y, unnest(%s::bigint[]) m""",
        [indicator.id, [s.id for s in sources], [m.id for m in members]])  # fmt: skip
    assert len(stored_preferred(indicator)) == 3 * 6
    assert stored_preferred(indicator) == preferred_by_rule(indicator)
    sql("DELETE FROM stats_observation WHERE indicator_id = %s AND source_id = %s", [indicator.id, sources[1].id])
    assert stored_preferred(indicator) == preferred_by_rule(indicator)
    assert len(stored_preferred(indicator)) == 3 * 6
