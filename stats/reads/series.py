"""The time series of one figure: every year that has it, with the change from the year before."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.db.models import F, Window
from django.db.models.functions import Coalesce, Lag

from stats import models
from stats.lookups import CatalogLookup


@dataclass
class SeriesPoint:
    year: int
    value: Decimal | None  # the corrected value where there is one, else the printed one
    change: Decimal | None
    percent_change: Decimal | None
    observation: models.Observation  # with its indicator and source from the catalog


def series(
    lookup: CatalogLookup,
    indicator: str,
    member_ids: list[int] = (),
    period: str = models.Period.ANNUAL,
    all_sources: bool = False,
    restatements: bool = False,
) -> list[SeriesPoint]:
    ind = lookup.indicator(indicator)
    qs = models.Observation.objects.filter(indicator=ind, member_ids=sorted(member_ids), period=period)
    if not all_sources:
        qs = qs.preferred()
    effective = Coalesce(F("corrected_value"), F("value"))
    qs = qs.annotate(
        effective=effective,
        previous=Window(Lag(effective), order_by=[F("year").asc(), F("id").asc()]),
    ).without_timestamps()
    points = []
    for obs in lookup.attach(list(qs.order_by("year", "id")), restatements=restatements):
        change = obs.effective - obs.previous if obs.effective is not None and obs.previous is not None else None
        pct = (change * 100 / obs.previous).quantize(Decimal("0.01")) if change is not None and obs.previous else None
        points.append(SeriesPoint(obs.year, obs.effective, change, pct, obs))
    return points
