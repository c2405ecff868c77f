"""Sums over the members of one dimension, computed by the database and checked against the printed totals."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

from django.contrib.postgres.aggregates import ArrayAgg
from django.db import connection
from django.db.models import Count, Q

from stats import models
from stats.display import display_value
from stats.lookups import CatalogLookup


class Refused(ValueError):
    """A read that would give a meaningless answer (adding up shares, running totals, approximations)."""


@dataclass
class AggregateGroup:
    year: int
    members: list[models.Member]  # one per group_by dimension
    sum: Decimal  # of the parts' display values (corrected where corrected)
    count: int
    total: models.Observation | None  # the printed total of the same group, if any (catalog attached)

    @property
    def total_display_value(self) -> Decimal | None:
        return display_value(self.total.value, self.total.corrected_value) if self.total else None

    @property
    def matches_total(self) -> bool | None:
        """Whether the sum equals the printed total's display value (None: no printed total)."""
        shown = self.total_display_value
        return (self.sum == shown) if shown is not None else None


def aggregate(
    lookup: CatalogLookup,
    indicator: str,
    over: str,
    years: list[int] | None = None,
    group_by: list[str] = (),
    fixed: list[int] = (),
    restatements: bool = False,
) -> list[AggregateGroup]:
    """Per year and ``group_by`` members, the sum of ``indicator`` over the members of ``over`` (within
    the ``fixed`` member ids, preferred source), with the printed total of the same group.

    Refuses (``Refused``) what cannot be added: shares and ratios, cumulative or point-in-time figures,
    approximate figures; and a dimension both summed over and grouped by.
    """
    ind = lookup.indicator(indicator)
    over_dim = lookup.dimension(over).id
    group_dims = [lookup.dimension(code).id for code in group_by]
    if ind.unit != models.Unit.COUNT:
        raise Refused(f"{indicator} is measured in {ind.unit}: shares and ratios cannot be added up")
    if over_dim in group_dims:
        raise Refused(f"{over} cannot be both summed over and grouped by")
    fixed_dims = [lookup.members_by_id[i].dimension_id for i in fixed]
    dims = sorted({over_dim, *group_dims, *fixed_dims})
    qs = models.Observation.objects.preferred().filter(indicator=ind).with_dimensions_exactly(dims).with_members(fixed)
    if years:
        qs = qs.filter(year__in=years)
    _refuse_what_cannot_be_added(qs, indicator)
    group_member_ids = [m.id for m in lookup.members_by_id.values() if m.dimension_id in group_dims]
    sql, params = qs.values("id").query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT o.year, g.ids, sum(coalesce(o.corrected_value, o.value)), count(*)
            FROM stats_observation o
            CROSS JOIN LATERAL (
              SELECT coalesce(array_agg(m ORDER BY m), '{{}}')::bigint[] AS ids
              FROM unnest(o.member_ids) m WHERE m = ANY(%s)
            ) g
            WHERE o.id IN ({sql})
            GROUP BY o.year, g.ids
            ORDER BY o.year, g.ids
            """,
            [group_member_ids, *params],
        )
        rows = cursor.fetchall()
    wanted = [sorted([*ids, *fixed]) for _, ids, _, _ in rows]
    totals = models.Observation.objects.preferred().filter(
        indicator=ind, year__in={r[0] for r in rows}, period=models.Period.ANNUAL, member_ids__in=wanted
    )
    printed: dict[int, dict[tuple, models.Observation]] = defaultdict(dict)
    for obs in lookup.attach(list(totals.without_timestamps()), restatements=restatements):
        printed[obs.year][tuple(obs.member_ids)] = obs
    return [
        AggregateGroup(year, lookup.members(ids), total, count, printed[year].get(tuple(sorted([*ids, *fixed]))))
        for year, ids, total, count in rows
    ]


def _refuse_what_cannot_be_added(qs, indicator: str) -> None:
    """One query for both refusals: periods that are not annual, and approximate figures."""
    approximate = Q(value__isnull=False) & ~Q(qualifier=models.Qualifier.EXACT)
    checks = qs.aggregate(
        kinds=ArrayAgg("period", distinct=True, filter=~Q(period=models.Period.ANNUAL), default=[]),
        approximate=Count("id", filter=approximate),
    )
    if checks["kinds"]:
        raise Refused(
            f"{indicator} has {', '.join(sorted(checks['kinds']))} figures: running totals cannot be added up"
        )
    if checks["approximate"]:
        example = qs.filter(approximate).first()
        raise Refused(
            f"{indicator} mixes approximate figures with exact ones "
            f'(e.g. "{example.get_qualifier_display()}" {example.value_text} in {example.year}): '
            "their sum would be meaningless"
        )
