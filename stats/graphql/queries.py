"""Root queries. Resolvers are thin: filtering, grouping and sums happen in the database."""

from __future__ import annotations

import functools
from collections import defaultdict
from decimal import Decimal
from typing import Any

import strawberry
import strawberry_django
from django.contrib.postgres.aggregates import ArrayAgg
from django.db import connection
from django.db.models import Count, Q
from graphql import GraphQLError
from strawberry.schema.name_converter import NameConverter
from strawberry.types import Info
from strawberry.types.nodes import SelectedField

from stats import models, reads
from stats.graphql import rows
from stats.graphql.context import catalog, data_version
from stats.graphql.filters import (
    MemberRef,
    ObservationFilter,
    ObservationOrder,
    dimension_ids,
    filter_observations,
    member_ids,
    order_observations,
    resolve,
)
from stats.graphql.pages import asked, page_bounds, selects
from stats.graphql.types import (
    Dimension,
    Flag,
    Indicator,
    Limit,
    Member,
    Observation,
    ObservationPage,
    Offset,
    Period,
    Qualifier,
    Source,
    Topic,
)


@strawberry.type(description="One cell of a report table.")
class TableCell:
    observation_id: strawberry.ID | None = strawberry.field(description="The observation behind the cell, if any.")
    value: Decimal | None = strawberry.field(description="The printed figure (empty when not printed).")
    value_text: str = strawberry.field(description="As printed.")
    qualifier: Qualifier | None = strawberry.field(description="The word printed before it.")
    flag: Flag | None = strawberry.field(description="Data-quality flag, if any.")
    corrected_value: Decimal | None = strawberry.field(description="The derived right value, if any.")


@strawberry.type(description="One row of a report table: a member, its cells in column order, its printed total.")
class TableRow:
    member: Member | None = strawberry.field(description="The row's member; null for the Total row.")
    cells: list[TableCell] = strawberry.field(description="One cell per column, in the order of `columns`.")
    total: TableCell | None = strawberry.field(description="The printed row total, if the table has columns.")


@strawberry.type(description="A report table as printed: rows × columns with printed totals.")
class Table:
    indicator: Indicator = strawberry.field(description="What the cells count.")
    year: int = strawberry.field(description="The year.")
    title: str = strawberry.field(description="The printed title of the table the cells come from.")
    row_dimension: Dimension = strawberry.field(description="The dimension down the side.")
    column_dimension: Dimension | None = strawberry.field(description="The dimension across the top, if any.")
    columns: list[Member] = strawberry.field(description="Column members in display order.")
    rows: list[TableRow] = strawberry.field(description="Rows in display order (only members that have figures).")
    total_row: TableRow | None = strawberry.field(description="The printed Total row (column totals, grand total).")
    sources: list[Source] = strawberry.field(description="The documents the cells come from.")


@strawberry.type(description="One year of a time series.")
class SeriesPoint:
    year: int = strawberry.field(description="The year.")
    value: Decimal | None = strawberry.field(description="The figure (corrected value where there is one).")
    value_text: str = strawberry.field(description="As printed.")
    qualifier: Qualifier = strawberry.field(description="The word printed before it.")
    source: Source = strawberry.field(description="The document it comes from.")
    change: Decimal | None = strawberry.field(description="Difference from the previous available year.")
    percent_change: Decimal | None = strawberry.field(description="Change in percent of the previous year's value.")
    observation: Observation = strawberry.field(description="The observation itself.")


@strawberry.type(description="One group of an aggregate, compared with the printed total where there is one.")
class AggregateGroup:
    year: int = strawberry.field(description="The year.")
    members: list[Member] = strawberry.field(description="The group's members (one per groupBy dimension).")
    sum: Decimal = strawberry.field(description="Sum of the parts, computed by the database.")
    count: int = strawberry.field(description="How many observations were added.")
    printed_total: Decimal | None = strawberry.field(description="The total the document prints, if any.")
    matches_printed_total: bool | None = strawberry.field(description="Whether the sum equals the printed total.")


@strawberry.type(description="What data exists: an indicator, a year and the breakdowns printed for it.")
class CoverageEntry:
    indicator: Indicator = strawberry.field(description="The indicator.")
    year: int = strawberry.field(description="The year.")
    breakdowns: list[list[str]] = strawberry.field(description="Dimension codes of each printed breakdown.")
    observations: int = strawberry.field(description="How many observations (preferred source).")


def _cell(obs: Any) -> TableCell | None:
    """A table cell from an observation (or a row of its CELL_FIELDS)."""
    if obs is None:
        return None
    return TableCell(
        observation_id=strawberry.ID(str(obs.id)),
        value=obs.value,
        value_text=obs.value_text,
        qualifier=Qualifier(obs.qualifier),
        flag=Flag(obs.flag) if obs.flag else None,
        corrected_value=obs.corrected_value,
    )


def _fields_below(selections, name: str) -> list[SelectedField]:
    """The fields selected directly below every ``name`` field of these selections (through fragments)."""
    found = []
    for selection in selections:
        if not isinstance(selection, SelectedField):
            found += _fields_below(selection.selections, name)
        elif selection.name == name:
            found += _flatten(selection.selections)
    return found


def _flatten(selections) -> list[SelectedField]:
    fields = []
    for selection in selections:
        fields += [selection] if isinstance(selection, SelectedField) else _flatten(selection.selections)
    return fields


@functools.cache
def _observation_reads() -> dict[str, tuple[str, ...] | None]:
    """The model fields each Observation field reads, by GraphQL name (None: not known).

    Relations read nothing more: indicator and source come from the catalog by the ids that are
    always loaded, restatements by id.
    """
    name = NameConverter().from_field
    reads: dict[str, tuple[str, ...] | None] = {}
    for field in Observation.__strawberry_definition__.fields:
        if field.is_relation:
            reads[name(field)] = ()
        elif field.base_resolver is None:
            reads[name(field)] = (field.django_name,)
        else:
            reads[name(field)] = tuple(field.store.only) or None
    return reads


def _observation_columns(asked) -> list[str] | None:
    """Only the columns the asked item fields read: fewer values to convert, cheaper model instances
    (a 10,000-row list asks for two of twenty). None when a field's needs are not known: load all."""
    columns = {"id", "indicator", "source"}  # what catalog.attach and the restatements need
    reads = _observation_reads()
    for field in _fields_below(asked, "items"):
        if field.name == "__typename":
            continue
        needed = reads.get(field.name)
        if needed is None:
            return None
        columns.update(needed)
    return sorted(columns)


@strawberry.type(description="Read the warehouse.")
class Query:
    @strawberry_django.field(description="Every source document.")
    def sources(self) -> list[Source]:
        return models.Source.objects.order_by("edition", "slug")

    @strawberry_django.field(description="One source document by slug, e.g. `impact-2021`.")
    def source(self, info: Info, slug: str) -> Source:
        return resolve(lambda: catalog(info).source(slug))

    @strawberry_django.field(description="Every topic (programme area).")
    def topics(self) -> list[Topic]:
        return models.Topic.objects.order_by("order", "code")

    @strawberry_django.field(description="Indicators, optionally of one topic or matching a word.")
    def indicators(self, info: Info, topic: str | None = None, search: str | None = None) -> list[Indicator]:
        qs = models.Indicator.objects.with_topic()
        if topic is not None:
            qs = qs.of_topic(topic)
        if search:
            qs = qs.filter(name__icontains=search) | qs.filter(code__icontains=search)
        return qs.order_by("topic__order", "order", "code")

    @strawberry_django.field(description="One indicator by code, e.g. `missing.cases`.")
    def indicator(self, info: Info, code: str) -> Indicator:
        return resolve(lambda: catalog(info).indicator(code))

    @strawberry_django.field(description="Every dimension (breakdown).")
    def dimensions(self) -> list[Dimension]:
        return models.Dimension.objects.order_by("order", "code")

    @strawberry_django.field(description="One dimension by code, e.g. `state`.")
    def dimension(self, info: Info, code: str) -> Dimension:
        return resolve(lambda: catalog(info).dimension(code))

    @strawberry.field(description="Observations matching a filter, one page at a time (offset pagination).")
    def observations(
        self,
        info: Info,
        filter: ObservationFilter | None = None,
        order: list[ObservationOrder] | None = None,
        offset: Offset = 0,
        limit: Limit = 100,
    ) -> ObservationPage:
        limit, offset = page_bounds(limit, offset)
        lookup = catalog(info)
        qs = filter_observations(models.Observation.objects.all(), filter, lookup)
        # Run only what the query asks for; join and build only the related rows it reads.
        wanted = asked(info)
        page, has_next = [], False
        plain = rows.row_columns(wanted)  # rows of the asked columns, not model instances, when they suffice
        if plain is not None and (selects(wanted, ("items",)) or selects(wanted, ("hasNextPage",))):
            items = rows.observation_rows(
                order_observations(qs, order, filter), plain, offset, offset + limit + 1, lookup
            )
            has_next, page = len(items) > limit, items[:limit]
        elif selects(wanted, ("items",)) or selects(wanted, ("hasNextPage",)):
            # One row past the page says whether another page follows.
            columns = _observation_columns(wanted)
            loaded = qs.only(*columns) if columns else qs.without_timestamps()
            items = list(order_observations(loaded, order, filter)[offset : offset + limit + 1])
            has_next, items = len(items) > limit, items[:limit]
            # Indicator and source from the catalog; restatements in one query when asked for.
            page = lookup.attach(items, restatements=selects(wanted, ("items", "restatements")))
        total = qs.count() if selects(wanted, ("totalCount",)) else 0
        return ObservationPage(total_count=total, offset=offset, limit=limit, has_next_page=has_next, items=page)

    @strawberry.field(description="A report table: one indicator and year, rows × columns, with printed totals.")
    def table(
        self,
        info: Info,
        indicator: str,
        year: int,
        rows: str,
        columns: str | None = None,
        source: str | None = None,
        members: list[MemberRef] | None = None,
    ) -> Table:
        lookup = catalog(info)
        # Unknown names are reported in argument order, members last.
        resolve(lambda: (lookup.indicator(indicator), lookup.dimension(rows), columns and lookup.dimension(columns)))
        fixed = member_ids(lookup, members)
        found = resolve(lambda: reads.table(lookup, indicator, year, rows, columns, source, fixed))
        empty = TableCell(
            observation_id=None, value=None, value_text="", qualifier=None, flag=None, corrected_value=None
        )

        def row(r: reads.Row) -> TableRow:
            return TableRow(
                member=r.member,
                cells=[_cell(c) or empty for c in r.cells],
                total=_cell(r.total) if found.column_dimension else None,
            )

        return Table(
            indicator=found.indicator,
            year=found.year,
            title=found.title,
            row_dimension=found.row_dimension,
            column_dimension=found.column_dimension,
            columns=found.columns,
            rows=[row(r) for r in found.rows],
            total_row=row(found.total_row) if found.total_row else None,
            sources=found.sources,
        )

    @strawberry.field(description="The time series of one figure: every year that has it, with year-on-year change.")
    def series(
        self,
        info: Info,
        indicator: str,
        members: list[MemberRef] | None = None,
        period: Period = Period.ANNUAL,
        all_sources: bool = False,
    ) -> list[SeriesPoint]:
        lookup = catalog(info)
        resolve(lambda: lookup.indicator(indicator))  # reported before an unknown member
        ids = member_ids(lookup, members)
        restatements = selects(asked(info), ("observation", "restatements"))  # one query, not one per year
        return [
            SeriesPoint(
                year=point.year,
                value=point.value,
                value_text=point.observation.value_text,
                qualifier=Qualifier(point.observation.qualifier),
                source=point.observation.source,
                change=point.change,
                percent_change=point.percent_change,
                observation=point.observation,
            )
            for point in resolve(lambda: reads.series(lookup, indicator, ids, period.value, all_sources, restatements))
        ]

    @strawberry.field(
        description=(
            "Sums and counts computed by the database over the members of one dimension (`over`), grouped by "
            "year and `groupBy` dimensions, each compared with the printed total. Refuses what cannot be added: "
            "cumulative or point-in-time figures, shares and ratios, approximate figures."
        )
    )
    def aggregate(
        self,
        info: Info,
        indicator: str,
        over: str,
        years: list[int] | None = None,
        group_by: list[str] | None = None,
        members: list[MemberRef] | None = None,
    ) -> list[AggregateGroup]:
        lookup = catalog(info)
        ind = resolve(lambda: lookup.indicator(indicator))
        if ind.unit != models.Unit.COUNT:
            raise GraphQLError(f"{indicator} is measured in {ind.unit}: shares and ratios cannot be added up")
        over_dim = resolve(lambda: lookup.dimension(over)).id
        group_dims = dimension_ids(lookup, group_by or [])
        if over_dim in group_dims:
            raise GraphQLError(f"{over} cannot be both summed over and grouped by")
        fixed = member_ids(lookup, members)
        fixed_dims = [lookup.members_by_id[i].dimension_id for i in fixed]
        dims = sorted({over_dim, *group_dims, *fixed_dims})
        qs = (
            models.Observation.objects.preferred()
            .filter(indicator=ind)
            .with_dimensions_exactly(dims)
            .with_members(fixed)
        )
        if years:
            qs = qs.filter(year__in=years)
        # One query for both refusals: periods that are not annual, and approximate figures.
        approximate = Q(value__isnull=False) & ~Q(qualifier=models.Qualifier.EXACT)
        checks = qs.aggregate(
            kinds=ArrayAgg("period", distinct=True, filter=~Q(period=models.Period.ANNUAL), default=[]),
            approximate=Count("id", filter=approximate),
        )
        if checks["kinds"]:
            raise GraphQLError(
                f"{indicator} has {', '.join(sorted(checks['kinds']))} figures: running totals cannot be added up"
            )
        if checks["approximate"]:
            example = qs.filter(approximate).first()
            raise GraphQLError(
                f"{indicator} mixes approximate figures with exact ones "
                f'(e.g. "{example.get_qualifier_display()}" {example.value_text} in {example.year}): '
                "their sum would be meaningless"
            )
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
        printed = defaultdict(dict)
        for obs in models.Observation.objects.preferred().filter(
            indicator=ind, year__in={r[0] for r in rows}, period=models.Period.ANNUAL, member_ids__in=wanted
        ):
            printed[obs.year][tuple(obs.member_ids)] = obs.effective_value
        groups = []
        for year, ids, total, count in rows:
            key = tuple(sorted([*ids, *fixed]))
            printed_total = printed[year].get(key)
            groups.append(
                AggregateGroup(
                    year=year,
                    members=lookup.members(ids),
                    sum=total,
                    count=count,
                    printed_total=printed_total,
                    matches_printed_total=(total == printed_total) if printed_total is not None else None,
                )
            )
        return groups

    @strawberry.field(description="Which indicators exist for which years and breakdowns.")
    def coverage(self, info: Info, year: int | None = None, topic: str | None = None) -> list[CoverageEntry]:
        lookup = catalog(info)
        qs = models.Observation.objects.preferred()
        if year is not None:
            qs = qs.filter(year=year)
        if topic is not None:
            qs = qs.for_topic(topic)
        rows = (
            qs.values("indicator_id", "year", "dimension_ids")
            .annotate(n=Count("id"))
            .order_by("indicator__code", "year")
        )
        entries: dict[tuple, CoverageEntry] = {}
        indicators = {i.id: i for i in lookup.indicators.values()}
        codes = {d.id: d.code for d in lookup.dimensions.values()}
        for row in rows:
            key = (row["indicator_id"], row["year"])
            entry = entries.get(key)
            if entry is None:
                entry = entries[key] = CoverageEntry(
                    indicator=indicators[row["indicator_id"]], year=row["year"], breakdowns=[], observations=0
                )
            entry.breakdowns.append([codes[d] for d in row["dimension_ids"]])
            entry.observations += row["n"]
        return list(entries.values())

    @strawberry.field(description="A number that every write to the warehouse increases; caches key on it.")
    def data_version(self, info: Info) -> int:
        return data_version(info)[0]
