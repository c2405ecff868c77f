"""What an import must settle before it is written: printed totals whose parts do not add up,
and figures for a year other than their source's edition.

The import service refuses the write until each is settled (the file fixed, or the caller's
explicit option), so the admin, the CLI and every other channel obey the same rule.
"""

from __future__ import annotations

from stats.checks import Fact, TotalCheck, mismatches, total_checks
from stats.lookups import CatalogLookup
from stats.models import Unit
from stats.services.errors import RowError
from stats.services.observations import staging
from stats.services.observations.rows import ValidRow


def checked_indicators(sizes: dict[int, set[int]], lookup: CatalogLookup) -> set[int]:
    """The indicators whose figures can be totals of others: ``sizes`` gives each one's breakdown sizes.

    A count is checked against a total of fewer dimensions: an indicator whose rows all have
    breakdowns of one size (a large file of leaf figures) has none, and costs nothing here.
    """
    indicators = lookup.indicators_by_id
    return {
        i for i, n in sizes.items()
        if indicators[i].unit == Unit.PERCENT or (indicators[i].unit == Unit.COUNT and len(n) > 1)
    }  # fmt: skip


def import_facts(rows: list[ValidRow], lookup: CatalogLookup, checked: set[int] | None = None) -> dict[Fact, ValidRow]:
    """The rows of an import as the plain records ``stats.checks`` adds up, each with its row.

    ``checked``: the indicators to check (by default worked out from ``rows``).
    """
    indicators, sources = lookup.indicators_by_id, lookup.sources_by_id
    if checked is None:
        sizes: dict[int, set[int]] = {}
        for row in rows:
            sizes.setdefault(row.indicator_id, set()).add(len(row.member_ids))
        checked = checked_indicators(sizes, lookup)
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


def sum_mismatches(
    rows: list[ValidRow], lookup: CatalogLookup, checked: set[int] | None = None
) -> tuple[list[TotalCheck], list[TotalCheck], dict]:
    """(unexplained, explained) totals of these rows that their parts do not add up to, and each fact's row."""
    facts = import_facts(rows, lookup, checked)
    unexplained, explained = mismatches(total_checks(facts))
    return unexplained, explained, facts


def mismatch_keys(unexplained: list[TotalCheck], row_of: dict[Fact, ValidRow]) -> set[tuple]:
    """The fact keys to flag as a sum mismatch: each mismatch's total (its shares, where no total is printed)."""
    keys = set()
    for check in unexplained:
        for fact in [check.total] if check.total else check.parts:
            keys.add(row_of[fact].key)
    return keys


def sum_mismatch_errors(unexplained: list[TotalCheck], row_of: dict[Fact, ValidRow]) -> list[RowError]:
    return [
        RowError(
            row_of[check.where].row,
            None,
            f"the parts do not add up: {check}. Fix the file, or store the figures as printed and flag them "
            "as a sum mismatch with a note",
        )
        for check in unexplained
    ]


def years_outside_edition(lookup: CatalogLookup) -> dict[str, tuple[int, list[int]]]:
    """Source slug -> (its edition, the other years the staged rows have figures of)."""
    sources = lookup.sources_by_id
    return {sources[i].slug: (sources[i].edition, years) for i, years in staging.years_by_source().items()}


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
