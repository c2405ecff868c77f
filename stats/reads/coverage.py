"""What data exists: per indicator and year, the breakdowns printed and how many figures each has."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Count

from stats import models
from stats.lookups import CatalogLookup


@dataclass
class Breakdown:
    dimensions: list[models.Dimension]  # in display order; empty for the grand total
    observations: int

    @property
    def key(self) -> str:
        """The breakdown by dimension code, in display order: "state", "case_type+case_status"; "total"
        for the grand total."""
        return "+".join(d.code for d in self.dimensions) or "total"


@dataclass
class CoverageEntry:
    indicator: models.Indicator
    year: int
    breakdowns: list[Breakdown] = field(default_factory=list)

    @property
    def observations(self) -> int:
        return sum(b.observations for b in self.breakdowns)


def coverage(lookup: CatalogLookup, year: int | None = None, topic: str | None = None) -> list[CoverageEntry]:
    """Per indicator (by code) and year, each printed breakdown with its count (preferred source),
    optionally for one year or one topic (an unknown topic is a ``LookupFailed``)."""
    qs = models.Observation.objects.preferred()
    if year is not None:
        qs = qs.filter(year=year)
    if topic is not None:
        qs = qs.for_indicator_ids([i.id for i in lookup.indicators_of_topic(topic)])
    rows = (
        qs.values("indicator_id", "year", "dimension_ids")
        .annotate(n=Count("id"))
        .order_by("indicator__code", "year", "dimension_ids")
    )
    dimensions = {d.id: d for d in lookup.dimensions.values()}
    entries: dict[tuple[int, int], CoverageEntry] = {}
    for row in rows:
        key = (row["indicator_id"], row["year"])
        entry = entries.get(key)
        if entry is None:
            entry = entries[key] = CoverageEntry(lookup.indicators_by_id[row["indicator_id"]], row["year"])
        dims = sorted((dimensions[d] for d in row["dimension_ids"]), key=lambda d: (d.order, d.code))
        entry.breakdowns.append(Breakdown(dims, row["n"]))
    return list(entries.values())
