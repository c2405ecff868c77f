"""What is counted, how it is broken down, and where it was printed."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from stats.printed import normalize_label


class Unit(models.TextChoices):
    COUNT = "count", "count"
    PERCENT = "percent", "percent (0–100)"
    PERCENT_CHANGE = "percent_change", "percent change"
    ONE_IN_N = "one_in_n", "1 in N"
    MULTIPLE = "multiple", "multiple (times)"


class Topic(models.Model):
    """A programme area of NCMEC's work that groups indicators (CyberTipline, AMBER Alert...)."""

    code = models.SlugField(max_length=64, unique=True, help_text="Stable identifier, e.g. `cybertipline`.")
    name = models.CharField(max_length=200, help_text="Display name.")
    description = models.TextField(blank=True, help_text="What the programme area covers.")
    order = models.PositiveIntegerField(default=0, help_text="Display order.")

    class Meta:
        ordering = ["order", "code"]

    def __str__(self) -> str:
        return self.name


class SourceQuerySet(models.QuerySet):
    def by_slugs(self, slugs) -> SourceQuerySet:
        return self.filter(slug__in=list(slugs))


class Source(models.Model):
    """A publication whose figures the warehouse holds: one impact report or web page."""

    class Kind(models.TextChoices):
        IMPACT_REPORT = "impact_report", "impact report"
        FACT_SHEET = "fact_sheet", "fact sheet"

    slug = models.SlugField(max_length=64, unique=True, help_text="Stable identifier, e.g. `impact-2021`.")
    title = models.CharField(max_length=300, help_text="Title as the publication prints it.")
    kind = models.CharField(
        max_length=20,
        choices=Kind.choices,
        help_text="Impact reports are preferred over fact sheets.",
    )
    edition = models.PositiveSmallIntegerField(help_text="The year the publication reports on.")
    publisher = models.CharField(max_length=200, default="National Center for Missing & Exploited Children")
    published = models.CharField(
        max_length=10,
        blank=True,
        help_text="Publication date where printed: YYYY, YYYY-MM or YYYY-MM-DD.",
    )
    document = models.CharField(max_length=200, help_text="File name of the text extraction it was read from.")
    format = models.CharField(max_length=40, blank=True, help_text="Original format: PDF, web page.")
    url = models.URLField(blank=True, help_text="Where the publication can be read, if known.")
    note = models.TextField(blank=True, help_text="What a reader should know about this document.")

    objects = SourceQuerySet.as_manager()

    class Meta:
        ordering = ["edition", "slug"]
        constraints = [
            models.CheckConstraint(
                name="source_published_iso",
                condition=Q(published="") | Q(published__regex=r"^\d{4}(-\d{2}(-\d{2})?)?$"),
                violation_error_message="published must be YYYY, YYYY-MM or YYYY-MM-DD",
            ),
            models.CheckConstraint(name="source_edition_plausible", condition=Q(edition__range=(1984, 2100))),
        ]

    def __str__(self) -> str:
        return self.title


class Dimension(models.Model):
    """A way figures are broken down (case status, state, age group...), shared across years."""

    code = models.SlugField(max_length=64, unique=True, help_text="Stable identifier, e.g. `state`.")
    name = models.CharField(max_length=200, help_text="Display name.")
    description = models.TextField(blank=True, help_text="What the breakdown means.")
    order = models.PositiveIntegerField(default=0, help_text="Display order.")

    class Meta:
        ordering = ["order", "code"]

    def __str__(self) -> str:
        return self.name


class MemberQuerySet(models.QuerySet):
    def of_dimension(self, code: str) -> MemberQuerySet:
        return self.filter(dimension__code=code)

    def matching(self, dimension_code: str, text: str) -> MemberQuerySet:
        """Members whose code, label or alias reads as ``text``."""
        return self.filter(dimension__code=dimension_code, aliases__normalized=normalize_label(text))


class Member(models.Model):
    """One value of a dimension (Alaska of state, Active of case status)."""

    dimension = models.ForeignKey(Dimension, on_delete=models.PROTECT, related_name="members")
    code = models.SlugField(max_length=64, help_text="Stable identifier within the dimension, e.g. `AK`.")
    label = models.CharField(max_length=200, help_text="Display label.")
    order = models.PositiveIntegerField(default=0, help_text="Display order within the dimension.")

    objects = MemberQuerySet.as_manager()

    class Meta:
        ordering = ["dimension__order", "order", "code"]
        constraints = [
            models.UniqueConstraint(fields=["dimension", "code"], name="member_code_unique_in_dimension"),
            # Target of the composite foreign keys that keep a member in its own dimension.
            models.UniqueConstraint(fields=["id", "dimension"], name="member_id_dimension_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.dimension.name}: {self.label}"


class MemberAlias(models.Model):
    """A spelling that reads as a member: its code, its label and every printed variant.

    Unique per dimension in normalized form, so one spelling can never mean two members.
    """

    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="aliases")
    dimension = models.ForeignKey(Dimension, on_delete=models.CASCADE, related_name="+")
    alias = models.CharField(max_length=200, help_text="The spelling as printed.")
    normalized = models.CharField(max_length=200, editable=False)

    class Meta:
        verbose_name_plural = "member aliases"
        ordering = ["member", "alias"]
        constraints = [
            models.UniqueConstraint(fields=["dimension", "normalized"], name="alias_unique_in_dimension"),
        ]

    def __str__(self) -> str:
        return self.alias

    def save(self, *args, **kwargs) -> None:
        self.normalized = normalize_label(self.alias)
        super().save(*args, **kwargs)


class IndicatorQuerySet(models.QuerySet):
    def with_topic(self) -> IndicatorQuerySet:
        return self.select_related("topic")

    def of_topic(self, code: str) -> IndicatorQuerySet:
        return self.filter(topic__code=code)


class Indicator(models.Model):
    """What is counted: a quantity comparable across years and documents."""

    code = models.CharField(max_length=100, unique=True, help_text="Stable identifier, e.g. `missing.cases`.")
    name = models.CharField(max_length=300, help_text="Display name.")
    definition = models.TextField(blank=True, help_text="What exactly is counted.")
    unit = models.CharField(max_length=20, choices=Unit.choices, help_text="How the value reads.")
    topic = models.ForeignKey(Topic, on_delete=models.PROTECT, related_name="indicators")
    order = models.PositiveIntegerField(default=0, help_text="Display order within the topic.")

    objects = IndicatorQuerySet.as_manager()

    class Meta:
        ordering = ["topic__order", "order", "code"]
        constraints = [
            models.CheckConstraint(
                name="indicator_code_format",
                condition=Q(code__regex=r"^[a-z0-9_]+(\.[a-z0-9_]+)+$"),
            ),
            models.CheckConstraint(name="indicator_unit_valid", condition=Q(unit__in=Unit.values)),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"
