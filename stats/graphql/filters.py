"""Filter inputs and how they become querysets (named QuerySet methods do the work)."""

from __future__ import annotations

from enum import Enum

import strawberry
from django.db.models import QuerySet
from graphql import GraphQLError

from stats.graphql.types import Flag, Period, Qualifier
from stats.lookups import CatalogLookup, LookupFailed
from stats.models import Observation
from stats.reads import Refused


@strawberry.input(description="One member of one dimension, by code, label or any printed spelling.")
class MemberRef:
    dimension: str = strawberry.field(description="Dimension code, e.g. `state`.")
    member: str = strawberry.field(description='Member code, label or alias: "AK", "Alaska".')


@strawberry.input(description="Which observations to return. Conditions combine with AND.")
class ObservationFilter:
    indicators: list[str] | None = strawberry.field(default=None, description="Indicator codes (any of).")
    topic: str | None = strawberry.field(default=None, description="Topic code, e.g. `cybertipline`.")
    year: int | None = strawberry.field(default=None, description="Exactly this year.")
    year_from: int | None = strawberry.field(default=None, description="This year or later.")
    year_to: int | None = strawberry.field(default=None, description="This year or earlier.")
    period: Period | None = strawberry.field(default=None, description="Annual, cumulative or point in time.")
    members: list[MemberRef] | None = strawberry.field(
        default=None, description="Broken down by all these members (AND across dimensions)."
    )
    breakdown: list[str] | None = strawberry.field(
        default=None,
        description="Broken down by exactly these dimensions and no other ([] for grand totals).",
    )
    breakdown_includes: list[str] | None = strawberry.field(
        default=None, description="Broken down by at least these dimensions."
    )
    source: str | None = strawberry.field(default=None, description="Source slug.")
    qualifier: Qualifier | None = strawberry.field(default=None, description="Printed with this qualifier.")
    flag: Flag | None = strawberry.field(default=None, description="Carrying this data-quality flag.")
    flagged: bool | None = strawberry.field(default=None, description="True: any flag; false: no flag.")
    all_sources: bool = strawberry.field(
        default=False, description="Every document's figure, not only the preferred source's (docs/data.md)."
    )


@strawberry.enum(description="Sort order of observations.")
class ObservationOrder(Enum):
    YEAR = strawberry.enum_value("year", description="Oldest year first.")
    YEAR_DESC = strawberry.enum_value("-year", description="Latest year first.")
    VALUE = strawberry.enum_value("value", description="Smallest printed value first (unprinted last).")
    VALUE_DESC = strawberry.enum_value("-value", description="Largest printed value first (unprinted first).")
    INDICATOR = strawberry.enum_value("indicator", description="By indicator code.")
    MEMBER_ORDER = strawberry.enum_value(
        "member_order", description="By breakdown, in the display order of its members."
    )


def resolve(lookup_call):
    """Run a catalog lookup or a read; an unknown code becomes a GraphQL error naming it and close
    matches, a refused question one saying why."""
    try:
        return lookup_call()
    except (LookupFailed, Refused) as exc:
        raise GraphQLError(str(exc)) from None


def member_ids(lookup: CatalogLookup, refs: list[MemberRef] | None) -> list[int]:
    ids = []
    for ref in refs or []:
        member = resolve(lambda ref=ref: lookup.member(ref.dimension, ref.member))
        if any(lookup.members_by_id[i].dimension_id == member.dimension_id for i in ids):
            raise GraphQLError(f"two members of dimension {ref.dimension}: an observation has at most one")
        ids.append(member.id)
    return ids


def dimension_ids(lookup: CatalogLookup, codes: list[str]) -> list[int]:
    return [resolve(lambda c=c: lookup.dimension(c)).id for c in codes]


def filter_observations(qs: QuerySet, f: ObservationFilter | None, lookup: CatalogLookup) -> QuerySet:
    f = f or ObservationFilter()
    if not f.all_sources and f.source is None:
        qs = qs.preferred()
    if f.indicators is not None:
        # By id from the catalog: no join, and the indexes on indicator_id apply.
        ids = [resolve(lambda code=code: lookup.indicator(code)).id for code in f.indicators]
        qs = qs.for_indicator_ids(ids)
    if f.topic is not None:
        qs = qs.for_topic(resolve(lambda: lookup.topic(f.topic)).code)
    if f.year is not None:
        qs = qs.filter(year=f.year)
    if f.year_from is not None:
        qs = qs.filter(year__gte=f.year_from)
    if f.year_to is not None:
        qs = qs.filter(year__lte=f.year_to)
    if f.period is not None:
        qs = qs.filter(period=f.period.value)
    if f.members:
        qs = qs.with_members(member_ids(lookup, f.members))
    if f.breakdown is not None:
        qs = qs.with_dimensions_exactly(dimension_ids(lookup, f.breakdown))
    if f.breakdown_includes:
        qs = qs.with_dimensions(dimension_ids(lookup, f.breakdown_includes))
    if f.source is not None:
        qs = qs.filter(source_id=resolve(lambda: lookup.source(f.source)).id)
    if f.qualifier is not None:
        qs = qs.filter(qualifier=f.qualifier.value)
    if f.flag is not None:
        qs = qs.filter(flag=f.flag.value)
    if f.flagged is not None:
        qs = qs.flagged() if f.flagged else qs.filter(flag="")
    return qs


def order_observations(
    qs: QuerySet, order: list[ObservationOrder] | None, f: ObservationFilter | None = None
) -> QuerySet:
    """Sort by ``order`` (default: indicator code, year, breakdown in display order), then id.

    The breakdown's display order is the stored ``member_order`` key (kept by the database), so a
    page of one indicator in the default order is an index scan of ``observation_page_order``
    that stops after the page. When the filter names a single indicator, its code is the same on
    every row and is left out of the ORDER BY (it would need a join to sort by).
    """
    one_indicator = f is not None and f.indicators is not None and len(set(f.indicators)) == 1
    fields = []
    for o in order or [ObservationOrder.INDICATOR, ObservationOrder.YEAR, ObservationOrder.MEMBER_ORDER]:
        if o is ObservationOrder.INDICATOR:
            if not one_indicator:
                fields.append("indicator__code")
        else:
            fields.append(o.value)
    return qs.order_by(*fields, "id")


__all__ = ["Observation", "ObservationFilter", "ObservationOrder", "filter_observations", "order_observations"]
