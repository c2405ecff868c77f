"""What an import must settle before it is written: printed totals whose parts do not add up,
and figures for a year other than their source's edition.

The import service refuses the write until each is settled (the file fixed, or the caller's
explicit option), so the admin, the CLI and every other channel obey the same rule.
"""

from __future__ import annotations

import dataclasses

from stats.checks import Fact, TotalCheck, mismatches, total_checks
from stats.lookups import CatalogLookup
from stats.models import Flag, Unit
from stats.services.errors import RowError
from stats.services.observations.rows import FIELD_INDEX, ValidRow

FLAG, NOTE = FIELD_INDEX["flag"], FIELD_INDEX["note"]


def import_facts(rows: list[ValidRow], lookup: CatalogLookup) -> dict[Fact, ValidRow]:
    """The rows of an import as the plain records ``stats.checks`` adds up, each with its row."""
    indicators, sources = lookup.indicators_by_id, lookup.sources_by_id
    # A count is checked against a total of fewer dimensions: an indicator whose rows all have
    # breakdowns of one size (a large file of leaf figures) has none, and costs nothing here.
    sizes: dict[int, set[int]] = {}
    for row in rows:
        sizes.setdefault(row.indicator_id, set()).add(len(row.member_ids))
    checked = {
        i for i, n in sizes.items()
        if indicators[i].unit == Unit.PERCENT or (indicators[i].unit == Unit.COUNT and len(n) > 1)
    }  # fmt: skip
    breakdowns: dict[tuple, frozenset] = {}
    facts = {}
    for row in rows:
        if row.indicator_id not in checked:
            continue
        indicator = indicators[row.indicator_id]
        members = breakdowns.get(row.member_ids)
        if members is None:
            members = breakdowns[row.member_ids] = frozenset(
                (m.dimension.code, m.code) for m in lookup.members(row.member_ids)
            )
        f = row.fields
        fact = Fact(
            indicator=indicator.code, unit=indicator.unit, source=sources[row.source_id].slug, year=f["year"],
            period=f["period"], since=f["since"], table=f["table"], members=members, value=f["value"],
            value_text=f["value_text"], qualifier=f["qualifier"], corrected_value=f["corrected_value"], flag=f["flag"],
        )  # fmt: skip
        facts[fact] = row
    return facts


def sum_mismatches(rows: list[ValidRow], lookup: CatalogLookup) -> tuple[list[TotalCheck], list[TotalCheck], dict]:
    """(unexplained, explained) totals of these rows that their parts do not add up to, and each fact's row."""
    facts = import_facts(rows, lookup)
    unexplained, explained = mismatches(total_checks(facts))
    return unexplained, explained, facts


def flagged_as_sum_mismatch(
    primaries: list[ValidRow], unexplained: list[TotalCheck], row_of: dict[Fact, ValidRow], note: str
) -> tuple[list[ValidRow], int]:
    """The rows with the total of each mismatch (the shares, where no total is printed) flagged with ``note``."""
    keys = set()
    for check in unexplained:
        for fact in [check.total] if check.total else check.parts:
            keys.add(row_of[fact].key)
    flagged = []
    for row in primaries:
        if row.key in keys:
            values = list(row.values)
            values[FLAG], values[NOTE] = Flag.SUM_MISMATCH, note
            source_row = dataclasses.replace(row.source_row, unset=row.source_row.unset - {"flag", "note"})
            row = ValidRow(source_row, row.indicator_id, row.source_id, row.member_ids, tuple(values))
        flagged.append(row)
    return flagged, len(keys)


def sum_mismatch_errors(unexplained: list[TotalCheck], row_of: dict[Fact, ValidRow]) -> list[RowError]:
    return [
        RowError(
            row_of[check.where].source_row.row,
            None,
            f"the parts do not add up: {check}. Fix the file, or store the figures as printed and flag them "
            "as a sum mismatch with a note",
        )
        for check in unexplained
    ]


def years_outside_edition(rows: list[ValidRow], lookup: CatalogLookup) -> dict[str, tuple[int, list[int]]]:
    """Source slug -> (its edition, the other years this import has figures of)."""
    sources = lookup.sources_by_id
    found: dict[int, set[int]] = {}
    for row in rows:
        year = row.values[0]
        if year != sources[row.source_id].edition:
            found.setdefault(row.source_id, set()).add(year)
    return {sources[i].slug: (sources[i].edition, sorted(years)) for i, years in found.items()}


def years_outside_edition_errors(outside: dict[str, tuple[int, list[int]]]) -> list[RowError]:
    return [
        RowError(
            None,
            "year",
            f"figures for {', '.join(map(str, years))} in {slug}, whose edition is {edition}: "
            "confirm that the source prints figures for these years",
        )
        for slug, (edition, years) in outside.items()
    ]
