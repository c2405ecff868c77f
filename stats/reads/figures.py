"""Reads behind the explorer's pages: headline figures, an indicator's printed tables, a source's
figures, one figure. Each returns observations with their indicator and source from the catalog."""

from __future__ import annotations

from collections import defaultdict

from django.db.models import Q

from stats import models
from stats.lookups import CatalogLookup, LookupFailed
from stats.reads.tables import CELL_FIELDS, Table, table

HEADLINES_PER_TOPIC = 3
# What an explorer cell shows besides the figure: its note (flagged figures are footnoted).
EXPLORER_CELL_FIELDS = (*CELL_FIELDS, "note")


def headlines(lookup: CatalogLookup) -> list[tuple[models.Topic, list[models.Observation]]]:
    """Per topic, the latest grand total of its first indicators (preferred source)."""
    latest = (
        models.Observation.objects.preferred()
        .filter(member_ids=[], value__isnull=False)
        .order_by("indicator_id", "-year", "period")
        .distinct("indicator_id")
        .without_timestamps()
    )
    found = {obs.indicator_id: obs for obs in lookup.attach(list(latest), restatements=False)}
    by_topic: dict[int, list[models.Observation]] = defaultdict(list)
    for indicator in sorted(lookup.indicators.values(), key=lambda i: (i.order, i.code)):
        if indicator.id in found and len(by_topic[indicator.topic_id]) < HEADLINES_PER_TOPIC:
            by_topic[indicator.topic_id].append(found[indicator.id])
    topics = models.Topic.objects.order_by("order", "code")
    return [(topic, by_topic[topic.id]) for topic in topics if by_topic[topic.id]]


def search_indicators(lookup: CatalogLookup, words: str) -> list[models.Indicator]:
    """Indicators whose name, code, topic or breakdowns contain every word (case-insensitive)."""
    words = words.lower().split()
    dimensions = defaultdict(set)
    for indicator_id, dimension_ids in (
        models.Observation.objects.values_list("indicator_id", "dimension_ids").distinct().iterator()
    ):
        dimensions[indicator_id].update(dimension_ids)
    names = {d.id: f"{d.code} {d.name}" for d in lookup.dimensions.values()}
    found = []
    for indicator in lookup.indicators.values():
        text = " ".join(
            [indicator.code, indicator.name, indicator.topic.name, *(names[d] for d in dimensions[indicator.id])]
        ).lower()
        if all(word in text for word in words):
            found.append(indicator)
    return sorted(found, key=lambda i: (i.topic.order, i.order, i.code))


def indicator_years(lookup: CatalogLookup, indicator: str) -> dict[int, list[tuple[int, ...]]]:
    """Year → the breakdowns (dimension id tuples) printed for it, preferred source."""
    ind = lookup.indicator(indicator)
    years: dict[int, list[tuple[int, ...]]] = defaultdict(list)
    rows = (
        models.Observation.objects.preferred()
        .filter(indicator=ind)
        .values_list("year", "dimension_ids")
        .distinct()
        .order_by("year", "dimension_ids")
    )
    for year, dimension_ids in rows:
        years[year].append(tuple(dimension_ids))
    return dict(years)


def printed_tables(lookup: CatalogLookup, indicator: str, year: int, breakdowns: list[tuple[int, ...]]) -> list[Table]:
    """The year's tables as printed: one per two-way breakdown (columns: the dimension with fewer
    members), then one per breakdown that no two-way table shows as its totals."""
    by_id = {d.id: d for d in lookup.dimensions.values()}
    size = defaultdict(int)
    for member in lookup.members_by_id.values():
        size[member.dimension_id] += 1
    tables, shown = [], set()
    for dims in breakdowns:
        if len(dims) == 2:
            columns, rows = sorted(dims, key=lambda d: (size[d], by_id[d].order))
            tables.append(table(lookup, indicator, year, by_id[rows].code, by_id[columns].code,
                                fields=EXPLORER_CELL_FIELDS))  # fmt: skip
            shown.update(dims)
    for dims in breakdowns:
        if len(dims) == 1 and dims[0] not in shown:
            tables.append(table(lookup, indicator, year, by_id[dims[0]].code, fields=EXPLORER_CELL_FIELDS))
    return tables


def source_figures(lookup: CatalogLookup, slug: str) -> tuple[models.Source, list[models.Observation]]:
    """A document and every figure it prints, in indicator, year and breakdown order."""
    source = lookup.source(slug)
    figures = models.Observation.objects.filter(source=source).without_timestamps()
    figures = lookup.attach(
        list(figures.order_by("indicator__topic__order", "indicator__order", "year", "member_order"))
    )
    return source, figures


def figure(lookup: CatalogLookup, observation_id: int) -> models.Observation:
    """One figure with its restatements and the other documents' printings of the same fact."""
    found = lookup.attach(list(models.Observation.objects.filter(id=observation_id)))
    if not found:
        raise LookupFailed(f"no figure with id {observation_id}")
    obs = found[0]
    same_fact = Q(indicator_id=obs.indicator_id, year=obs.year, period=obs.period, member_ids=obs.member_ids)
    obs.other_printings = lookup.attach(
        list(models.Observation.objects.filter(same_fact).exclude(id=obs.id).order_by("source__edition")),
        restatements=False,
    )
    return obs
