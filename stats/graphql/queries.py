"""Root queries. Resolvers are thin: they check the codes they are given and shape what a named read
(stats.reads: table, series, aggregate, coverage) returns; filtering, grouping and sums happen in the database."""

from __future__ import annotations

import functools
from decimal import Decimal
from typing import Annotated, Any

import strawberry
import strawberry_django
from strawberry.schema.name_converter import NameConverter
from strawberry.types import Info

from stats import models, reads
from stats.display import display_text, display_value, number_text
from stats.graphql import rows
from stats.graphql.context import catalog, data_version
from stats.graphql.filters import (
    MemberRef,
    ObservationFilter,
    ObservationOrder,
    filter_observations,
    member_ids,
    order_observations,
    resolve,
)
from stats.graphql.pages import asked, page_bounds, selects
from stats.graphql.types import (
    CORRECTED_VALUE,
    DISPLAY_TEXT,
    DISPLAY_VALUE,
    VALUE,
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
    value: Decimal | None = strawberry.field(description=VALUE)
    value_text: str = strawberry.field(description="As printed (empty when not printed).")
    qualifier: Qualifier | None = strawberry.field(description="The word printed before it.")
    flag: Flag | None = strawberry.field(description="Data-quality flag, if any.")
    corrected_value: Decimal | None = strawberry.field(description=CORRECTED_VALUE)
    display_value: Decimal | None = strawberry.field(description=DISPLAY_VALUE)
    display_text: str | None = strawberry.field(description=DISPLAY_TEXT)


@strawberry.type(description="One row of a report table: a member, its cells in column order, its printed total.")
class TableRow:
    member: Member | None = strawberry.field(description="The row's member; null for the Total row.")
    cells: list[TableCell] = strawberry.field(description="One cell per column, in the order of `columns`.")
    total: TableCell | None = strawberry.field(description="The printed row total, if the table has columns.")


@strawberry.type(description="A report table as printed: rows × columns with printed totals.")
class Table:
    indicator: Indicator = strawberry.field(description="What the cells count.")
    year: int = strawberry.field(description="The year.")
    title: str = strawberry.field(
        description="The printed title of the table most cells come from (empty for running text)."
    )
    row_dimension: Dimension = strawberry.field(description="The dimension down the side.")
    column_dimension: Dimension | None = strawberry.field(description="The dimension across the top, if any.")
    columns: list[Member] = strawberry.field(description="Column members in display order.")
    rows: list[TableRow] = strawberry.field(description="Rows in display order (only members that have figures).")
    total_row: TableRow | None = strawberry.field(description="The printed Total row (column totals, grand total).")
    sources: list[Source] = strawberry.field(description="The documents the cells come from.")


@strawberry.type(description="One year of a time series.")
class SeriesPoint:
    year: int = strawberry.field(description="The year.")
    value: Decimal | None = strawberry.field(
        description="The figure to show (the corrected value where there is one).",
        deprecation_reason=(
            "The corrected figure here but the printed one on Observation and TableCell: "
            "use displayValue (the same figure), or observation { value } for the printed one."
        ),
    )
    value_text: str = strawberry.field(description="As printed.")
    qualifier: Qualifier = strawberry.field(description="The word printed before it.")
    corrected_value: Decimal | None = strawberry.field(description=CORRECTED_VALUE)
    display_value: Decimal | None = strawberry.field(description=DISPLAY_VALUE)
    display_text: str | None = strawberry.field(description=DISPLAY_TEXT)
    source: Source = strawberry.field(description="The document it comes from.")
    change: Decimal | None = strawberry.field(
        description="The displayValue minus that of comparedWithYear (the previous year that has the figure)."
    )
    percent_change: Decimal | None = strawberry.field(
        description="The change in percent of comparedWithYear's displayValue, to two decimals."
    )
    compared_with_year: int | None = strawberry.field(
        description=(
            "The year that change and percentChange compare with: the previous year that has the figure, "
            "not always the year before (2021 → 2024 where 2022 and 2023 are missing); null without a change."
        )
    )
    observation: Observation = strawberry.field(description="The observation itself.")


@strawberry.type(description="One group of an aggregate, compared with the printed total where there is one.")
class AggregateGroup:
    year: int = strawberry.field(description="The year.")
    members: list[Member] = strawberry.field(description="The group's members (one per groupBy dimension).")
    sum: Decimal = strawberry.field(
        description="Sum of the parts' displayValue (corrected where corrected), computed by the database."
    )
    display_value: Decimal = strawberry.field(description="The figure to show: the sum.")
    display_text: str = strawberry.field(description='The sum in words, exactly: "27,033", "20.5 million".')
    count: int = strawberry.field(description="How many observations were added.")
    total: Observation | None = strawberry.field(
        description="The total the document prints for the group, if any (value, correctedValue, displayValue...)."
    )
    printed_total: Decimal | None = strawberry.field(
        description="The printed total's displayValue (the corrected total where there is one), if any.",
        deprecation_reason="The corrected total where there is one, despite its name: use total { displayValue }.",
    )
    matches_printed_total: bool | None = strawberry.field(
        description="Whether the sum equals the printed total's displayValue (null where none is printed)."
    )


@strawberry.type(description="One breakdown printed for an indicator and year, named by its dimensions.")
class Breakdown:
    key: str = strawberry.field(
        description='Its dimension codes in display order joined by "+" ("state", "case_type+case_status"); '
        '"total" for the grand total.'
    )
    dimensions: list[Dimension] = strawberry.field(description="Its dimensions, in display order (none for a total).")
    observations: int = strawberry.field(description="How many observations (preferred source).")


@strawberry.type(description="What data exists: an indicator, a year and the breakdowns printed for it.")
class CoverageEntry:
    indicator: Indicator = strawberry.field(description="The indicator.")
    year: int = strawberry.field(description="The year.")
    breakdowns: list[list[str]] = strawberry.field(
        description="Dimension codes of each printed breakdown ([] for the grand total).",
        deprecation_reason="An unnamed [] stands for the grand total: use printedBreakdowns { key dimensions }.",
    )
    printed_breakdowns: list[Breakdown] = strawberry.field(
        description="Each printed breakdown, named by its dimension codes, with its count."
    )
    observations: int = strawberry.field(description="How many observations (preferred source).")


def _cell(obs: Any, unit: str) -> TableCell | None:
    """A table cell from an observation (or a row of its CELL_FIELDS) of an indicator measured in ``unit``."""
    if obs is None:
        return None
    return TableCell(
        observation_id=strawberry.ID(str(obs.id)),
        value=obs.value,
        value_text=obs.value_text,
        qualifier=Qualifier(obs.qualifier),
        flag=Flag(obs.flag) if obs.flag else None,
        corrected_value=obs.corrected_value,
        display_value=display_value(obs.value, obs.corrected_value),
        display_text=display_text(obs.value_text, obs.qualifier, obs.corrected_value, unit),
    )


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
    always = {"id", "indicator", "source"}  # what catalog.attach and the restatements need
    return rows.columns_read(asked, _observation_reads(), always)


# Arguments of the root fields, described once.
IndicatorCode = Annotated[str, strawberry.argument(description="Indicator code, e.g. `missing.cases`.")]
DimensionCode = Annotated[str, strawberry.argument(description="Dimension code, e.g. `state`.")]
TopicCode = Annotated[
    str | None, strawberry.argument(description="Only this topic (programme area), by code, e.g. `cybertipline`.")
]
Members = Annotated[
    list[MemberRef] | None,
    strawberry.argument(description="Only figures broken down by these members too (at most one per dimension)."),
]


@strawberry.type(description="Read the warehouse.")
class Query:
    @strawberry_django.field(description="Every source document.")
    def sources(self) -> list[Source]:
        return models.Source.objects.order_by("edition", "slug")

    @strawberry_django.field(description="One source document by slug, e.g. `impact-2021`.")
    def source(
        self, info: Info, slug: Annotated[str, strawberry.argument(description="Source slug, e.g. `impact-2021`.")]
    ) -> Source:
        return resolve(lambda: catalog(info).source(slug))

    @strawberry_django.field(description="Every topic (programme area).")
    def topics(self) -> list[Topic]:
        return models.Topic.objects.order_by("order", "code")

    @strawberry_django.field(description="Indicators, optionally of one topic or matching a word.")
    def indicators(
        self,
        info: Info,
        topic: TopicCode = None,
        search: Annotated[
            str | None, strawberry.argument(description="Only indicators whose name or code contains this text.")
        ] = None,
    ) -> list[Indicator]:
        qs = models.Indicator.objects.with_topic()
        if topic is not None:
            qs = qs.of_topic(resolve(lambda: catalog(info).topic(topic)).code)
        if search:
            qs = qs.filter(name__icontains=search) | qs.filter(code__icontains=search)
        return qs.order_by("topic__order", "order", "code")

    @strawberry_django.field(description="One indicator by code, e.g. `missing.cases`.")
    def indicator(self, info: Info, code: IndicatorCode) -> Indicator:
        return resolve(lambda: catalog(info).indicator(code))

    @strawberry_django.field(description="Every dimension (breakdown).")
    def dimensions(self) -> list[Dimension]:
        return models.Dimension.objects.order_by("order", "code")

    @strawberry_django.field(description="One dimension by code, e.g. `state`.")
    def dimension(self, info: Info, code: DimensionCode) -> Dimension:
        return resolve(lambda: catalog(info).dimension(code))

    @strawberry.field(description="Observations matching a filter, one page at a time (offset pagination).")
    def observations(
        self,
        info: Info,
        filter: Annotated[
            ObservationFilter | None,
            strawberry.argument(description="Which observations (default: every preferred figure)."),
        ] = None,
        order: Annotated[
            list[ObservationOrder] | None,
            strawberry.argument(description="Sort keys in turn (default: INDICATOR, YEAR, MEMBER_ORDER), then id."),
        ] = None,
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
        indicator: IndicatorCode,
        year: Annotated[int, strawberry.argument(description="The year the figures are for.")],
        rows: Annotated[str, strawberry.argument(description="Dimension code down the side, e.g. `state`.")],
        columns: Annotated[
            str | None, strawberry.argument(description="Dimension code across the top, if any, e.g. `case_status`.")
        ] = None,
        source: Annotated[
            str | None,
            strawberry.argument(description="Only this document's figures, by slug (default: the preferred ones)."),
        ] = None,
        members: Members = None,
    ) -> Table:
        lookup = catalog(info)
        # Unknown names are reported in argument order, members last.
        resolve(lambda: (lookup.indicator(indicator), lookup.dimension(rows), columns and lookup.dimension(columns)))
        fixed = member_ids(lookup, members)
        found = resolve(lambda: reads.table(lookup, indicator, year, rows, columns, source, fixed))
        unit = found.indicator.unit
        empty = TableCell(
            observation_id=None, value=None, value_text="", qualifier=None, flag=None, corrected_value=None,
            display_value=None, display_text=None,
        )  # fmt: skip

        def row(r: reads.Row) -> TableRow:
            return TableRow(
                member=r.member,
                cells=[_cell(c, unit) or empty for c in r.cells],
                total=_cell(r.total, unit) if found.column_dimension else None,
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
        indicator: IndicatorCode,
        members: Annotated[
            list[MemberRef] | None,
            strawberry.argument(
                description="The breakdown: exactly these members, one per dimension (default: none, the grand total)."
            ),
        ] = None,
        period: Annotated[
            Period | None,
            strawberry.argument(
                description=(
                    "Which figures: annual, cumulative or point in time (default: the indicator's own, "
                    "ANNUAL where it has annual figures, else the period most of its figures have)."
                )
            ),
        ] = None,
        all_sources: Annotated[
            bool,
            strawberry.argument(description="Every document's figure for each year, not only the preferred one."),
        ] = False,
    ) -> list[SeriesPoint]:
        lookup = catalog(info)
        resolve(lambda: lookup.indicator(indicator))  # reported before an unknown member
        ids = member_ids(lookup, members)
        restatements = selects(asked(info), ("observation", "restatements"))  # one query, not one per year
        kind = period.value if period is not None else None
        points = resolve(lambda: reads.series(lookup, indicator, ids, kind, all_sources, restatements))
        unit = lookup.indicator(indicator).unit
        return [_point(point, unit) for point in points]

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
        indicator: IndicatorCode,
        over: Annotated[str, strawberry.argument(description="Dimension code whose members are summed, e.g. `state`.")],
        years: Annotated[
            list[int] | None, strawberry.argument(description="Only these years (default: every year).")
        ] = None,
        group_by: Annotated[
            list[str] | None,
            strawberry.argument(description="Dimension codes to group by, one group per member (default: none)."),
        ] = None,
        members: Members = None,
    ) -> list[AggregateGroup]:
        lookup = catalog(info)
        # Unknown names are reported in argument order, members last; then what cannot be added.
        resolve(
            lambda: (lookup.indicator(indicator), lookup.dimension(over), [lookup.dimension(g) for g in group_by or []])
        )
        fixed = member_ids(lookup, members)
        restatements = selects(asked(info), ("total", "restatements"))
        groups = resolve(lambda: reads.aggregate(lookup, indicator, over, years, group_by or [], fixed, restatements))
        return [_group(group) for group in groups]

    @strawberry.field(description="Which indicators exist for which years and breakdowns.")
    def coverage(
        self,
        info: Info,
        year: Annotated[int | None, strawberry.argument(description="Only this year.")] = None,
        topic: TopicCode = None,
    ) -> list[CoverageEntry]:
        return [
            CoverageEntry(
                indicator=entry.indicator,
                year=entry.year,
                breakdowns=[[d.code for d in b.dimensions] for b in entry.breakdowns],
                printed_breakdowns=[
                    Breakdown(key=b.key, dimensions=b.dimensions, observations=b.observations) for b in entry.breakdowns
                ],
                observations=entry.observations,
            )
            for entry in resolve(lambda: reads.coverage(catalog(info), year, topic))
        ]

    @strawberry.field(description="A number that every write to the warehouse increases; caches key on it.")
    def data_version(self, info: Info) -> int:
        return data_version(info)[0]


def _point(point: reads.SeriesPoint, unit: str) -> SeriesPoint:
    obs = point.observation
    return SeriesPoint(
        year=point.year,
        value=point.display_value,
        value_text=obs.value_text,
        qualifier=Qualifier(obs.qualifier),
        corrected_value=obs.corrected_value,
        display_value=point.display_value,
        display_text=display_text(obs.value_text, obs.qualifier, obs.corrected_value, unit),
        source=obs.source,
        change=point.change,
        percent_change=point.percent_change,
        compared_with_year=point.compared_with_year,
        observation=obs,
    )


def _group(group: reads.AggregateGroup) -> AggregateGroup:
    return AggregateGroup(
        year=group.year,
        members=group.members,
        sum=group.sum,
        display_value=group.sum,
        display_text=number_text(group.sum, models.Unit.COUNT),
        count=group.count,
        total=group.total,
        printed_total=group.total_display_value,
        matches_printed_total=group.matches_total,
    )
