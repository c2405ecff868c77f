"""GraphQL types of the warehouse. Every type and field is described; fields are listed explicitly."""

from __future__ import annotations

import inspect
from datetime import date
from decimal import Decimal
from enum import Enum
from typing import Annotated

import strawberry
import strawberry_django
from strawberry.types import Info
from strawberry_django.fields.field import StrawberryDjangoField

from stats import models
from stats.display import display_text, display_value, printed_text
from stats.graphql import loaders
from stats.graphql.context import catalog
from stats.graphql.loaders import batched, batches, no_query
from stats.graphql.pages import LIMIT_DESCRIPTION, OFFSET_DESCRIPTION, asked, page_bounds, selects
from stats.history import event_counts

# The deprecated unpaged lists of observations (Source/Indicator/Member.observations) stop here.
LIST_CAP = 1000
Limit = Annotated[int, strawberry.argument(description=LIMIT_DESCRIPTION)]
Offset = Annotated[int, strawberry.argument(description=OFFSET_DESCRIPTION)]
Year = Annotated[int | None, strawberry.argument(description="Only figures for this year.")]
AllSources = Annotated[
    bool, strawberry.argument(description="Every document's figure for each fact, not only the preferred one.")
]


class ColumnField(StrawberryDjangoField):
    """A model column read as it is: resolved as a basic field.

    strawberry-django marks every field as needing its resolver, so each value of each row
    builds an Info, parses arguments and runs the field-extension chain just to read an
    attribute; a page of observations has hundreds of them. A basic field reads the attribute
    (strawberry-django's own get_result, without Info). Relations and resolvers keep the full path.
    """

    @property
    def is_basic_field(self) -> bool:
        return not self.base_resolver and not self.extensions and not self.is_relation

    def get_result(self, source, info, args, kwargs):
        # A loaded column is in the instance's __dict__ under its name; anything else (a deferred
        # column, no instance) takes strawberry-django's way.
        try:
            return source.__dict__[self.django_name]
        except (AttributeError, KeyError):
            return super().get_result(source, info, args, kwargs)


def column(*, description: str):
    """A plain model column of a Django type (see ColumnField)."""
    return strawberry_django.field(description=description, field_cls=ColumnField)


# The same four names, with the same meaning, on every type that carries a figure.
VALUE = "The figure as printed, as a number (exact decimal); null where none is printed."
CORRECTED_VALUE = "The right figure where it can be derived from the documents; null where the printed one stands."
DISPLAY_VALUE = "The figure to show: correctedValue where there is one, else value."
DISPLAY_TEXT = (
    'The figure to show in words, with its printed qualifier: "more than 21.7 million" as printed, or the '
    'corrected figure written out exactly ("29,397,681"); null where there is no figure.'
)


def summary(model) -> str:
    """A model's docstring, first paragraph: the user-facing description of its GraphQL type."""
    return inspect.cleandoc(model.__doc__ or "").split("\n\n")[0].replace("\n", " ")


@strawberry.enum(description="How a figure's period reads.")
class Period(Enum):
    ANNUAL = strawberry.enum_value("annual", description="Counted during the year.")
    CUMULATIVE = strawberry.enum_value("cumulative", description="A running total up to the year's end (or asOf).")
    POINT_IN_TIME = strawberry.enum_value("point_in_time", description="A level at a moment (users, followers).")


@strawberry.enum(description="What kind of document a source is.")
class SourceKind(Enum):
    IMPACT_REPORT = strawberry.enum_value("impact_report", description="An annual impact report (preferred).")
    FACT_SHEET = strawberry.enum_value("fact_sheet", description="A fact sheet or key-facts page.")


@strawberry.enum(description="What a recorded change of an observation did.")
class HistoryEventKind(Enum):
    INSERT = strawberry.enum_value("insert", description="The observation was created.")
    UPDATE = strawberry.enum_value("update", description="The observation was changed.")
    DELETE = strawberry.enum_value("delete", description="The observation was deleted.")


@strawberry.enum(description="The word printed before a figure.")
class Qualifier(Enum):
    EXACT = strawberry.enum_value("exact", description="Printed as an exact figure.")
    MORE_THAN = strawberry.enum_value("more_than", description='Printed after "more than".')
    OVER = strawberry.enum_value("over", description='Printed after "over".')
    NEARLY = strawberry.enum_value("nearly", description='Printed after "nearly".')
    APPROXIMATELY = strawberry.enum_value("approximately", description='Printed after "approximately" or "about".')
    AT_LEAST = strawberry.enum_value("at_least", description='Printed after "at least".')
    LESS_THAN = strawberry.enum_value("less_than", description='Printed after "less than" or "<".')
    PLUS = strawberry.enum_value("plus", description='Printed with a trailing "+" ("83,000+").')


@strawberry.enum(description="A data-quality problem of a printed figure (docs/data.md).")
class Flag(Enum):
    MISSING_VALUE = strawberry.enum_value("missing_value", description="Printed without its figure.")
    GARBLED = strawberry.enum_value("garbled", description="The extraction mangled the figure.")
    SUM_MISMATCH = strawberry.enum_value("sum_mismatch", description="Parts do not add up to the printed total.")
    UNIT_MISMATCH = strawberry.enum_value("unit_mismatch", description="The printed unit contradicts the figures.")
    REPEATS_OTHER_YEAR = strawberry.enum_value("repeats_other_year", description="Repeats another year's figure.")
    CONTRADICTS_DOCUMENT = strawberry.enum_value(
        "contradicts_document", description="The same document prints another value for the same fact."
    )
    MISLABELLED = strawberry.enum_value("mislabelled", description="The printed label contradicts what it counts.")


@strawberry.enum(description="How an indicator's values read.")
class Unit(Enum):
    COUNT = strawberry.enum_value("count", description="A number of things.")
    PERCENT = strawberry.enum_value("percent", description="A share, 0 to 100.")
    PERCENT_CHANGE = strawberry.enum_value("percent_change", description="A change in percent.")
    ONE_IN_N = strawberry.enum_value("one_in_n", description='"1 in N", stored as N.')
    MULTIPLE = strawberry.enum_value("multiple", description='"N times", "doubled" = 2.')


@strawberry_django.type(models.Topic, description=summary(models.Topic))
class Topic:
    code: str = column(description="Stable identifier, e.g. `cybertipline`.")
    name: str = column(description="Display name.")
    description: str = column(description="What the programme area covers.")
    indicators: list[Indicator] = strawberry_django.field(description="The indicators of this topic.")


@strawberry_django.type(models.Source, description=summary(models.Source))
class Source:
    slug: str = column(description="Stable identifier, e.g. `impact-2021`.")
    title: str = column(description="Title as the publication prints it.")
    kind: str = strawberry_django.field(
        description="`impact_report` or `fact_sheet` (lower case).",
        deprecation_reason="A lower-case string unlike every other enum: use documentKind (IMPACT_REPORT, FACT_SHEET).",
        field_cls=ColumnField,
    )
    document_kind: SourceKind = strawberry_django.field(
        field_name="kind", description="What kind of document it is.", field_cls=ColumnField
    )
    edition: int = column(description="The year the publication reports on.")
    publisher: str = column(description="Who published it.")
    published: str = column(description="Publication date where printed (YYYY, YYYY-MM...).")
    document: str = column(description="File name of the text extraction it was read from.")
    format: str = column(description="Original format: PDF, web page.")
    note: str = column(description="What a reader should know about this document.")

    @strawberry_django.field(
        description=f"Every figure this document prints, at most {LIST_CAP:,} (use observationPage for more).",
        deprecation_reason=f"Stops at {LIST_CAP:,} figures: use observationPage.",
    )
    @batched
    def observations(self, info: Info) -> list[Observation]:
        return observation_list(info, self, "source", preferred=False)

    @strawberry_django.field(
        description="The figures this document prints, one page at a time (one per fact; restatements are nested)."
    )
    @batched
    def observation_page(
        self, info: Info, limit: Limit = 100, offset: Offset = 0, year: Year = None
    ) -> ObservationPage:
        return observation_page(info, self, "source", limit=limit, offset=offset, year=year, preferred=False)


@strawberry_django.type(models.Dimension, description=summary(models.Dimension))
class Dimension:
    code: str = column(description="Stable identifier, e.g. `state`.")
    name: str = column(description="Display name.")
    description: str = column(description="What the breakdown means.")
    members: list[Member] = strawberry_django.field(description="The dimension's members, in display order.")


@strawberry_django.type(models.Member, description=summary(models.Member))
class Member:
    code: str = column(description="Stable identifier within the dimension, e.g. `AK`.")
    label: str = column(description="Display label.")
    order: int = column(description="Display order within the dimension.")

    @strawberry_django.field(description="The dimension this member belongs to.", only=["dimension_id"])
    @no_query
    def dimension(self, info: Info) -> Dimension:
        return catalog(info).members_by_id[self.id].dimension

    @strawberry_django.field(
        description="Every spelling that reads as this member, its code and label included.",
        deprecation_reason="Repeats the code and label: use otherSpellings.",
    )
    @batched
    def aliases(self, info: Info) -> list[str]:
        return _spellings(info, self)

    @strawberry_django.field(
        description='The other spellings that read as this member, besides its code and label ("Local/State/ICAC").',
        only=["code", "label"],
    )
    @batched
    def other_spellings(self, info: Info) -> list[str]:
        # Exactly the code and label: a spelling that only reads like one ("Local/State/ICAC" for the
        # code local_state_icac) is printed differently, and is what a reader needs to recognise.
        return [s for s in _spellings(info, self) if s not in (self.code, self.label)]

    @strawberry_django.field(
        description=f"Observations broken down by this member (preferred source; at most {LIST_CAP:,}).",
        deprecation_reason=f"Stops at {LIST_CAP:,} figures: use observationPage.",
    )
    @batched
    def observations(self, info: Info, year: Year = None) -> list[Observation]:
        return observation_list(info, self, "member", year=year, preferred=True)

    @strawberry_django.field(
        description="Observations broken down by this member (preferred source), one page at a time."
    )
    @batched
    def observation_page(
        self, info: Info, limit: Limit = 100, offset: Offset = 0, year: Year = None
    ) -> ObservationPage:
        return observation_page(info, self, "member", limit=limit, offset=offset, year=year, preferred=True)


def _spellings(info: Info, member) -> list[str]:
    """Every stored spelling of the member (code and label included), with its siblings' in one query."""
    return batches(info).loader(("Member.aliases",), loaders.aliases, list).load(info, member)


@strawberry_django.type(models.Indicator, description=summary(models.Indicator))
class Indicator:
    code: str = column(description="Stable identifier, e.g. `missing.cases`.")
    name: str = column(description="Display name.")
    definition: str = column(description="What exactly is counted.")
    unit: Unit = column(description="How the value reads.")
    topic: Topic = strawberry_django.field(description="The programme area.")

    @strawberry_django.field(description="Years that have at least one observation of this indicator.")
    @batched
    def years(self, info: Info) -> list[int]:
        return batches(info).loader(("Indicator.years",), loaders.years, list).load(info, self)

    @strawberry_django.field(
        description=(
            "This indicator's observations (preferred source unless allSources), optionally for one year; "
            f"at most {LIST_CAP:,}."
        ),
        deprecation_reason=f"Stops at {LIST_CAP:,} figures: use observationPage.",
    )
    @batched
    def observations(self, info: Info, year: Year = None, all_sources: AllSources = False) -> list[Observation]:
        return observation_list(info, self, "indicator", year=year, preferred=not all_sources)

    @strawberry_django.field(
        description="This indicator's observations (preferred source unless allSources), one page at a time."
    )
    @batched
    def observation_page(
        self, info: Info, limit: Limit = 100, offset: Offset = 0, year: Year = None, all_sources: AllSources = False
    ) -> ObservationPage:
        return observation_page(
            info, self, "indicator", limit=limit, offset=offset, year=year, preferred=not all_sources
        )


@strawberry_django.type(models.Restatement, description=summary(models.Restatement))
class Restatement:
    value: Decimal | None = column(description=VALUE)
    value_text: str = column(description="As printed.")
    qualifier: Qualifier = column(description="The word printed before it.")
    quote: str = column(description="The verbatim sentence it was printed in.")
    note: str = column(description="What is wrong with this printing, if anything.")

    @strawberry_django.field(
        description="The figure to show: value (a restatement is never corrected; its observation is).",
        only=["value"],
    )
    def display_value(self) -> Decimal | None:
        return self.value

    @strawberry_django.field(
        description='The restatement as the document words it: "more than 21.7 million"; null where none is printed.',
        only=["value_text", "qualifier"],
    )
    def display_text(self) -> str | None:
        return printed_text(self.qualifier, self.value_text) or None

    @strawberry_django.field(description="Data-quality problem of this printing, if any.", only=["flag"])
    def flag(self) -> Flag | None:
        return Flag(self.flag) if self.flag else None


@strawberry.type(description="One recorded change of an observation (audit trail).")
class HistoryEvent:
    id: int = strawberry.field(description="Event id (used to revert to this state in the admin).")
    label: str = strawberry.field(
        description="`insert`, `update` or `delete` (lower case).",
        deprecation_reason="A lower-case string unlike every other enum: use kind.",
    )
    kind: HistoryEventKind = strawberry.field(description="What the change did.")
    at: str = strawberry.field(description="When (ISO 8601).")
    user_id: int | None = strawberry.field(
        description="Who (user id), when known; null unless the caller may read observations in the admin."
    )
    reason: str | None = strawberry.field(
        description="Why, as given with the change; null unless the caller may read observations in the admin."
    )
    value: Decimal | None = strawberry.field(description="The printed figure after the event.")
    corrected_value: Decimal | None = strawberry.field(description="The corrected figure after the event.")
    display_value: Decimal | None = strawberry.field(description="The figure to show after the event.")
    flag: str = strawberry.field(
        description="The data-quality flag after the event, lower case (empty for none).",
        deprecation_reason="A lower-case string unlike Observation.flag: use qualityFlag.",
    )
    quality_flag: Flag | None = strawberry.field(description="The data-quality flag after the event, if any.")


@strawberry_django.type(models.Observation, description=summary(models.Observation))
class Observation:
    id: strawberry.ID = column(description="Database id (stable for the life of the figure).")
    indicator: Indicator = strawberry_django.field(description="What is counted.")
    source: Source = strawberry_django.field(description="The document that printed it.")
    year: int = column(description="The year the figure is for.")
    period: Period = column(description="Annual, cumulative or point in time.")
    since: int | None = column(description="First year of a cumulative figure, where printed.")
    as_of: date | None = column(description="Date the figure stands at, where printed.")
    value: Decimal | None = column(description=VALUE)
    value_text: str = column(description='As printed: "21.7 million", "1 in 6".')
    qualifier: Qualifier = column(description='The word printed before it: "more than"...')
    quote: str = column(description="The verbatim sentence or table row it was printed in.")
    table: str = column(description="Title of the printed table; empty for running text.")
    note: str = column(description="What is wrong or worth knowing about this figure.")
    corrected_value: Decimal | None = column(description=CORRECTED_VALUE)
    correction_reason: str = column(description="How the corrected value was derived.")
    is_preferred: bool = column(description="True for the figure plain queries return for this fact.")
    version: int = column(description="Increases with every change; send it back as expectedVersion.")
    restatements: list[Restatement] = strawberry_django.field(
        description="The same fact printed again in the same document (perhaps rounded)."
    )

    @strawberry_django.field(description="Data-quality problem, if any.", only=["flag"])
    def flag(self) -> Flag | None:
        return Flag(self.flag) if self.flag else None

    @strawberry_django.field(
        description="The corrected value if there is one, else the printed value.",
        only=["value", "corrected_value"],
        deprecation_reason="Renamed displayValue, the name every type uses for this figure.",
    )
    def effective_value(self) -> Decimal | None:
        return display_value(self.value, self.corrected_value)

    @strawberry_django.field(description=DISPLAY_VALUE, only=["value", "corrected_value"])
    def display_value(self) -> Decimal | None:
        return display_value(self.value, self.corrected_value)

    @strawberry_django.field(description=DISPLAY_TEXT, only=["value_text", "qualifier", "corrected_value", "indicator"])
    @no_query
    def display_text(self, info: Info) -> str | None:
        unit = catalog(info).indicators_by_id[self.indicator_id].unit
        return display_text(self.value_text, self.qualifier, self.corrected_value, unit)

    @strawberry_django.field(
        description="The breakdown: one member per dimension (empty for a grand total).", only=["member_ids"]
    )
    @no_query
    def members(self, info: Info) -> list[Member]:
        return catalog(info).breakdown(self.member_ids)

    @strawberry_django.field(
        description="Recorded changes of this figure, oldest first, one page at a time (who and why for staff only).",
        deprecation_reason="A list that does not say whether more follow: use historyPage (hasNextPage, totalCount).",
    )
    @batched
    def history(self, info: Info, limit: Limit = 100, offset: Offset = 0) -> list[HistoryEvent]:
        limit, offset = page_bounds(limit, offset)
        return _history(info, self, offset, limit)

    @strawberry_django.field(
        description="Recorded changes of this figure, oldest first, one page at a time (who and why for staff only)."
    )
    @batched
    def history_page(self, info: Info, limit: Limit = 100, offset: Offset = 0) -> HistoryPage:
        limit, offset = page_bounds(limit, offset)
        wanted = asked(info)
        events = []
        if selects(wanted, ("items",)) or selects(wanted, ("hasNextPage",)):
            events = _history(info, self, offset, limit + 1)  # one event past the page says another follows
        total = 0
        if selects(wanted, ("totalCount",)):
            total = batches(info).loader(("Observation.historyCount",), event_counts, int).load(info, self)
        return HistoryPage(
            total_count=total, offset=offset, limit=limit, has_next_page=len(events) > limit, items=events[:limit]
        )


def _history(info: Info, observation, offset: int, limit: int) -> list[HistoryEvent]:
    """One page of an observation's events, fetched with its siblings' (stats.graphql.loaders)."""
    staff = sees_identities(info)
    fetch = lambda keys: loaders.history(keys, offset=offset, limit=limit, identities=staff)  # noqa: E731
    events = batches(info).loader(("Observation.history", offset, limit, staff), fetch, list).load(info, observation)
    return [
        HistoryEvent(
            id=e.pgh_id,
            label=e.pgh_label,
            kind=HistoryEventKind(e.pgh_label),
            at=e.pgh_created_at.isoformat(),
            user_id=e.pgh_context.metadata.get("user") if staff and e.pgh_context else None,
            reason=e.pgh_context.metadata.get("reason") if staff and e.pgh_context else None,
            value=e.value,
            corrected_value=e.corrected_value,
            display_value=display_value(e.value, e.corrected_value),
            flag=e.flag,
            quality_flag=Flag(e.flag) if e.flag else None,
        )
        for e in events
    ]


@strawberry.type(description="A page of an observation's recorded changes (offset pagination) with the total count.")
class HistoryPage:
    total_count: int = strawberry.field(description="How many changes are recorded, over all pages.")
    offset: int = strawberry.field(description="Index of the first item of this page.")
    limit: int = strawberry.field(description="Page size asked for (capped at the server's maximum).")
    has_next_page: bool = strawberry.field(description="Whether changes follow this page (ask with offset + limit).")
    items: list[HistoryEvent] = strawberry.field(description="The changes of this page, oldest first.")


def sees_identities(info: Info) -> bool:
    """Who changed a figure and why is for the warehouse's staff: callers who may read observations in the
    admin (where the same history is shown). Anonymous callers see when and what, never who or why."""
    user = getattr(info.context.request, "user", None)
    # As the admin's has_view_permission: the view or the change permission.
    return user is not None and any(user.has_perm(f"stats.{p}_observation") for p in ("view", "change"))


@strawberry.type(description="A page of observations (offset pagination) with the total count.")
class ObservationPage:
    total_count: int = strawberry.field(description="How many observations match, over all pages.")
    offset: int = strawberry.field(description="Index of the first item of this page.")
    limit: int = strawberry.field(description="Page size asked for (capped at the server's maximum).")
    has_next_page: bool = strawberry.field(
        description="Whether observations follow this page (ask with offset + limit)."
    )
    items: list[Observation] = strawberry.field(description="The observations of this page.")


def observation_page(
    info: Info, parent, kind: str, *, limit: int, offset: int, year: int | None, preferred: bool
) -> ObservationPage:
    """One parent's page of observations, fetched with its siblings' (stats.graphql.loaders)."""
    limit, offset = page_bounds(limit, offset)
    wanted = asked(info)
    items = selects(wanted, ("items",)) or selects(wanted, ("hasNextPage",))
    page = _observations(
        info, parent, kind, offset=offset, limit=limit, year=year, preferred=preferred, items=items,
        total=selects(wanted, ("totalCount",)), restatements=selects(wanted, ("items", "restatements")),
    )  # fmt: skip
    return ObservationPage(
        total_count=page.total, offset=offset, limit=limit, has_next_page=page.has_next, items=page.items
    )


def observation_list(info: Info, parent, kind: str, *, year: int | None = None, preferred: bool) -> list[Observation]:
    """The first LIST_CAP observations of a parent (the deprecated unpaged fields)."""
    page = _observations(
        info, parent, kind, offset=0, limit=LIST_CAP, year=year, preferred=preferred, items=True, total=False,
        restatements=selects(asked(info), ("restatements",)),
    )  # fmt: skip
    return page.items


def _observations(info: Info, parent, kind: str, **arguments) -> loaders.Page:
    key = (kind, *sorted(arguments.items()))
    fetch = lambda keys: loaders.observation_pages(info, kind, keys, **arguments)  # noqa: E731
    empty = lambda: loaders.Page(items=[], has_next=False, total=0)  # noqa: E731
    return batches(info).loader(key, fetch, empty).load(info, parent)
