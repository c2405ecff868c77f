"""The time series of one figure: every year that has it, with the change from the year before."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import F, Window
from django.db.models.functions import Coalesce, Lag

from stats import models
from stats.lookups import CatalogLookup


@dataclass
class SeriesPoint:
    year: int
    display_value: Decimal | None  # the corrected value where there is one, else the printed one
    change: Decimal | None
    percent_change: Decimal | None
    compared_with_year: int | None  # the year the change is from: not always the year before (gaps)
    observation: models.Observation  # with its indicator and source from the catalog


def own_period(periods: Counter) -> str | None:
    """The period a series of an indicator reads in when none is asked for: annual where it has annual
    figures, else the period it has most figures in (a running total, a level)."""
    if not periods:
        return None
    if periods[models.Period.ANNUAL]:
        return models.Period.ANNUAL
    order = list(models.Period.values)
    return max(periods, key=lambda p: (periods[p], -order.index(p)))


def series(
    lookup: CatalogLookup,
    indicator: str,
    member_ids: list[int] = (),
    period: str | None = None,
    all_sources: bool = False,
    restatements: bool = False,
) -> list[SeriesPoint]:
    """The figures of ``indicator`` broken down by exactly ``member_ids``, by year, in ``period``
    (default: the indicator's own, see own_period), each with its change from the previous point."""
    ind = lookup.indicator(indicator)
    qs = models.Observation.objects.filter(indicator=ind, member_ids=sorted(member_ids))
    if period is not None:
        qs = qs.filter(period=period)
    if not all_sources:
        qs = qs.preferred()
    effective = Coalesce(F("corrected_value"), F("value"))
    order = [F("year").asc(), F("id").asc()]
    qs = qs.annotate(
        effective=effective,
        previous=Window(Lag(effective), partition_by=[F("period")], order_by=order),
        previous_year=Window(Lag("year"), partition_by=[F("period")], order_by=order),
    ).without_timestamps()
    found = list(qs.order_by("year", "id"))
    if period is None:  # one query for every period, then the indicator's own
        period = own_period(Counter(obs.period for obs in found))
        found = [obs for obs in found if obs.period == period]
    points = []
    for obs in lookup.attach(found, restatements=restatements):
        change = obs.effective - obs.previous if obs.effective is not None and obs.previous is not None else None
        pct = (change * 100 / obs.previous).quantize(Decimal("0.01")) if change is not None and obs.previous else None
        compared_with = obs.previous_year if change is not None else None
        points.append(SeriesPoint(obs.year, obs.effective, change, pct, compared_with, obs))
    return points
