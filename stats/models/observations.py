"""Observations: one printed figure each, with its breakdown, provenance and data-quality state."""

from __future__ import annotations

from collections.abc import Iterable

import pghistory
import pgtrigger
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Coalesce, Now

from stats.models.catalog import Indicator, Source


class Period(models.TextChoices):
    ANNUAL = "annual", "annual"
    CUMULATIVE = "cumulative", "cumulative"
    POINT_IN_TIME = "point_in_time", "point in time"


class Qualifier(models.TextChoices):
    EXACT = "exact", "exact"
    MORE_THAN = "more_than", "more than"
    OVER = "over", "over"
    NEARLY = "nearly", "nearly"
    APPROXIMATELY = "approximately", "approximately"
    AT_LEAST = "at_least", "at least"
    LESS_THAN = "less_than", "less than"
    PLUS = "plus", "+"


class Flag(models.TextChoices):
    MISSING_VALUE = "missing_value", "missing value"
    GARBLED = "garbled", "garbled"
    SUM_MISMATCH = "sum_mismatch", "parts do not sum to total"
    UNIT_MISMATCH = "unit_mismatch", "unit mismatch"
    REPEATS_OTHER_YEAR = "repeats_other_year", "repeats another year"
    CONTRADICTS_DOCUMENT = "contradicts_document", "contradicts the document"
    MISLABELLED = "mislabelled", "mislabelled"


# What staff may change on an observation (admin form, GraphQL, reverts); history records them all.
EDITABLE_FIELDS = (
    "value",
    "value_text",
    "qualifier",
    "flag",
    "note",
    "corrected_value",
    "correction_reason",
    "quote",
)


class ObservationQuerySet(models.QuerySet):
    """Named reads shared by the admin, GraphQL and the management commands."""

    def preferred(self) -> ObservationQuerySet:
        """One observation per fact: the preferred source's (see docs/data.md)."""
        return self.filter(is_preferred=True)

    def for_indicator_ids(self, ids: Iterable[int]) -> ObservationQuerySet:
        return self.filter(indicator_id__in=list(ids))

    def for_topic(self, code: str) -> ObservationQuerySet:
        return self.filter(indicator__topic__code=code)

    def with_members(self, member_ids: Iterable[int]) -> ObservationQuerySet:
        """Broken down by at least these members (GIN index on member_ids)."""
        return self.filter(member_ids__contains=sorted(member_ids))

    def with_dimensions_exactly(self, dimension_ids: Iterable[int]) -> ObservationQuerySet:
        """Broken down by exactly these dimensions and no other (empty: grand totals)."""
        return self.filter(dimension_ids=sorted(dimension_ids))

    def with_dimensions(self, dimension_ids: Iterable[int]) -> ObservationQuerySet:
        """Broken down by at least these dimensions."""
        return self.filter(dimension_ids__contains=sorted(dimension_ids))

    def flagged(self) -> ObservationQuerySet:
        return self.exclude(flag="")

    def with_effective_value(self) -> ObservationQuerySet:
        return self.annotate(effective=Coalesce(F("corrected_value"), F("value")))

    def without_timestamps(self) -> ObservationQuerySet:
        """Leave out created_at and updated_at, which no reader shows: two fewer timestamps to parse per row."""
        return self.defer("created_at", "updated_at")

    def with_related(self) -> ObservationQuerySet:
        return self.select_related("indicator", "indicator__topic", "source")

    def fact_key_filter(self, *, indicator_id, year, period, since, member_ids) -> ObservationQuerySet:
        return self.filter(
            indicator_id=indicator_id,
            year=year,
            period=period,
            since=since,
            member_ids=sorted(member_ids),
        )


@pghistory.track(
    pghistory.InsertEvent(),
    pghistory.UpdateEvent(),
    pghistory.DeleteEvent(),
    fields=[*EDITABLE_FIELDS, "version"],
    obj_field=pghistory.ObjForeignKey(related_name="events", db_constraint=False),
    model_name="ObservationEvent",
    # Statement-level triggers record a bulk import in one set-based insert, not one per row.
    level=pgtrigger.Statement,
)
class Observation(models.Model):
    """One figure as a document prints it: indicator, year, period, breakdown, value, source.

    The breakdown is ``member_ids`` (sorted member ids, at most one per dimension); a trigger
    checks that every id is a member and fills ``dimension_ids`` and ``member_order``. Printed totals are
    observations whose breakdown omits the summed dimension.
    """

    # No index of their own: the fact's unique index and observation_source_indicator serve them (0015, 0017, 0020).
    # Checked once per statement by triggers, not per row by a foreign key (migration 0016).
    indicator = models.ForeignKey(
        Indicator, on_delete=models.PROTECT, related_name="observations", db_index=False, db_constraint=False
    )
    source = models.ForeignKey(
        Source, on_delete=models.PROTECT, related_name="observations", db_index=False, db_constraint=False
    )
    year = models.PositiveSmallIntegerField(help_text="The year the figure is for.")
    period = models.CharField(
        db_default=Period.ANNUAL,
        max_length=20,
        choices=Period.choices,
        default=Period.ANNUAL,
        help_text="annual: counted during the year; cumulative: running total to the year's end "
        "(or as_of); point_in_time: a level at a moment.",
    )
    since = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="First year of a cumulative figure, where printed."
    )
    as_of = models.DateField(null=True, blank=True, help_text="Date the figure stands at, where printed.")
    member_ids = ArrayField(
        models.BigIntegerField(),
        default=list,
        blank=True,
        help_text="The breakdown: sorted member ids.",
    )
    dimension_ids = ArrayField(
        models.BigIntegerField(),
        default=list,
        blank=True,
        editable=False,
        help_text="Dimensions of the breakdown (sorted; filled by the database).",
    )
    member_order = models.TextField(
        db_collation="C",
        db_default="",
        default="",
        blank=True,
        editable=False,
        help_text="Sort key of the breakdown in display order (dimension order, then member order); "
        "filled by the database, kept right when members or dimensions are reordered.",
    )
    value = models.DecimalField(
        max_digits=24,
        decimal_places=4,
        null=True,
        blank=True,
        help_text="The printed figure as a number; empty only when the document prints no figure.",
    )
    value_text = models.CharField(
        db_default="", max_length=100, blank=True, help_text='As printed: "21.7 million", "1 in 6".'
    )
    qualifier = models.CharField(
        db_default=Qualifier.EXACT,
        max_length=20,
        choices=Qualifier.choices,
        default=Qualifier.EXACT,
        help_text='The word printed before the figure: "more than", "nearly"...',
    )
    quote = models.TextField(help_text="The verbatim sentence or table row the figure was printed in.")
    table = models.CharField(
        db_default="", max_length=500, blank=True, help_text="Title of the printed table; empty for running text."
    )
    flag = models.CharField(
        db_default="", max_length=30, choices=Flag.choices, blank=True, help_text="Data-quality problem, if any."
    )
    note = models.TextField(db_default="", blank=True, help_text="What is wrong or worth knowing about this figure.")
    corrected_value = models.DecimalField(
        max_digits=24,
        decimal_places=4,
        null=True,
        blank=True,
        help_text="The right value where it can be derived; the printed value stays.",
    )
    correction_reason = models.TextField(db_default="", blank=True, help_text="How the corrected value was derived.")
    is_preferred = models.BooleanField(
        db_default=False,
        default=False,
        editable=False,
        help_text="True for the one observation per fact that plain queries return; kept by the database "
        "(triggers on observations and sources, migration 0010), whatever writes.",
    )
    version = models.PositiveIntegerField(
        db_default=1,
        default=1,
        editable=False,
        help_text="Increases with every change; edits name the version they saw.",
    )
    created_at = models.DateTimeField(db_default=Now(), auto_now_add=True)
    updated_at = models.DateTimeField(db_default=Now(), auto_now=True)

    objects = ObservationQuerySet.as_manager()

    class Meta:
        ordering = ["indicator__code", "year", "member_ids", "source__edition"]
        permissions = [("import_observation", "Can import observations (long and table files)")]
        constraints = [
            # The fact's columns first and the source last: every figure of one fact (the ranking, the
            # import's matching, restatements) or of one indicator and year is one range of this index.
            models.UniqueConstraint(
                fields=["indicator", "year", "period", "since", "member_ids", "source"],
                name="observation_fact_unique_per_source",
                nulls_distinct=False,
                violation_error_message=(
                    "This source already has an observation for this indicator, year, period and breakdown."
                ),
            ),
            models.CheckConstraint(
                name="observation_value_or_missing_flag",
                condition=Q(value__isnull=False) | Q(flag=Flag.MISSING_VALUE),
                violation_error_message="A value is required unless the flag is missing_value.",
            ),
            models.CheckConstraint(
                name="observation_correction_has_reason",
                condition=Q(corrected_value__isnull=True) | ~Q(correction_reason=""),
                violation_error_message="A corrected value needs a correction reason.",
            ),
            # Exactly one preferred figure per fact: the triggers of migration 0010 choose it. In the order
            # of a series (one indicator's breakdown, year after year): a series is one range of it, however
            # many other figures share its members (0021; by year, the fact's other index serves).
            models.UniqueConstraint(
                fields=["indicator", "member_ids", "year", "period", "since"],
                condition=Q(is_preferred=True),
                name="observation_one_preferred_per_fact",
                nulls_distinct=False,
            ),
            models.CheckConstraint(name="observation_period_valid", condition=Q(period__in=Period.values)),
            models.CheckConstraint(name="observation_qualifier_valid", condition=Q(qualifier__in=Qualifier.values)),
            models.CheckConstraint(name="observation_flag_valid", condition=Q(flag="") | Q(flag__in=Flag.values)),
            models.CheckConstraint(name="observation_year_plausible", condition=Q(year__range=(1984, 2100))),
            models.CheckConstraint(
                name="observation_since_cumulative",
                condition=Q(since__isnull=True) | (Q(period=Period.CUMULATIVE) & Q(since__lte=F("year"))),
                violation_error_message="since is for cumulative figures and cannot be after the year.",
            ),
        ]
        indexes = [
            models.Index(fields=["year"], name="observation_year"),
            # A source's figures, and one source's figures of one indicator (the whole-table export's pieces).
            models.Index(fields=["source", "indicator"], name="observation_source_indicator"),
            GinIndex(fields=["member_ids"], name="observation_member_ids_gin"),
            models.Index(
                fields=["indicator", "dimension_ids", "year"],
                condition=Q(is_preferred=True),
                name="observation_preferred",
            ),
            models.Index(fields=["flag"], condition=~Q(flag=""), name="observation_flagged"),
            # The default page order (indicator, year, display order of the breakdown, id): a page of
            # one indicator's figures is an index scan that stops after the page.
            models.Index(
                fields=["indicator", "year", "member_order", "id"],
                condition=Q(is_preferred=True),
                name="observation_page_order",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.indicator.code} {self.year} = {self.value_text or '—'} ({self.source.slug})"

    @property
    def effective_value(self):
        return self.corrected_value if self.corrected_value is not None else self.value


class Restatement(models.Model):
    """The same fact printed again elsewhere in the same document, perhaps rounded ("more than 29,000")."""

    observation = models.ForeignKey(Observation, on_delete=models.CASCADE, related_name="restatements")
    value = models.DecimalField(max_digits=24, decimal_places=4, null=True, blank=True)
    value_text = models.CharField(max_length=100, blank=True, help_text="As printed.")
    qualifier = models.CharField(max_length=20, choices=Qualifier.choices, default=Qualifier.EXACT)
    quote = models.TextField(help_text="The verbatim sentence it was printed in.")
    flag = models.CharField(max_length=30, choices=Flag.choices, blank=True)
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["observation", "id"]
        constraints = [
            models.UniqueConstraint(fields=["observation", "quote", "value_text"], name="restatement_unique"),
            models.CheckConstraint(name="restatement_qualifier_valid", condition=Q(qualifier__in=Qualifier.values)),
        ]

    def __str__(self) -> str:
        return f"{self.value_text} — {self.quote[:60]}"


# A transaction whose bump waits for its commit (stats/services/locking.py) reads the version it
# will commit (the counter after its bump, stamped with its own now()), so its own reads are not
# answered from before its writes; everyone else reads the stored row.
DATA_VERSION_SQL = (
    "SELECT value + pending, CASE WHEN pending = 1 THEN now() ELSE changed_at END FROM stats_dataversion, "
    "(SELECT (current_setting('stats.data_version_pending', true) IS NOT DISTINCT FROM 'on')::int AS pending) "
    "AS mine WHERE id = 1"
)


class DataVersion(models.Model):
    """A single counter that every write to the warehouse increases (caches key on it).

    Bumped by statement triggers in the same transaction as the write, so a reader never sees
    new data under an old version.
    """

    value = models.BigIntegerField(default=1)
    changed_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.CheckConstraint(name="dataversion_singleton", condition=Q(id=1))]

    def __str__(self) -> str:
        return f"data version {self.value}"

    @classmethod
    def current(cls) -> int:
        return cls.objects.filter(id=1).values_list("value", flat=True).first() or 0

    @classmethod
    def stamp(cls, using: str = "default") -> tuple[int, str]:
        """The counter and its timestamp, as caches key on them (one indexed read, no ORM).

        The timestamp matters: a write rolled back after its bump frees the number for the next.
        ``using``: the database the answer's data will be read from (a replica's may be older).
        """
        from django.db import connections

        with connections[using].cursor() as cursor:
            cursor.execute(DATA_VERSION_SQL)
            row = cursor.fetchone()
        return (row[0], row[1].isoformat()) if row else (0, "")
