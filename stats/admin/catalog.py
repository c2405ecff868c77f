"""The catalog in the admin: topics, sources, indicators, dimensions and their members.

Every save goes through stats.services.catalog, as the published-data loader does: a member
created here gets its spellings (label, code, aliases) so imports find it by label. Codes and
slugs are the stable keys the services upsert by, so they are fixed once created.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils.html import format_html
from import_export.admin import ExportMixin

from stats.models import Dimension, Indicator, Member, MemberAlias, Source, Topic
from stats.printed import normalize_label
from stats.resources import DimensionResource, IndicatorResource, MemberResource, SourceResource, TopicResource
from stats.services.catalog import dimension_upsert, indicator_upsert, member_upsert, source_upsert, topic_upsert


class CatalogAdmin(ExportMixin, admin.ModelAdmin):
    """Saves through a catalog service (``upsert``); the key field is read-only once created."""

    key = "code"

    def get_readonly_fields(self, request, obj=None):
        return [*super().get_readonly_fields(request, obj), *([self.key] if obj is not None else [])]

    def upsert(self, obj):
        raise NotImplementedError

    def save_model(self, request, obj, form, change):
        obj.pk = self.upsert(obj).pk


@admin.register(Topic)
class TopicAdmin(CatalogAdmin):
    resource_classes = [TopicResource]
    list_display = ["code", "name", "order"]
    search_fields = ["code", "name"]

    def upsert(self, topic: Topic) -> Topic:
        return topic_upsert(code=topic.code, name=topic.name, description=topic.description, order=topic.order)


@admin.register(Source)
class SourceAdmin(CatalogAdmin):
    resource_classes = [SourceResource]
    list_display = ["slug", "title", "kind", "edition", "document", "observation_count"]
    list_filter = ["kind", "edition"]
    search_fields = ["slug", "title", "document"]
    key = "slug"

    @admin.display(description="observations")
    def observation_count(self, source: Source):
        url = reverse("admin:stats_observation_changelist") + f"?source__id__exact={source.id}"
        return format_html('<a href="{}">{}</a>', url, source.observations.count())

    def upsert(self, source: Source) -> Source:
        fields = ("title", "kind", "edition", "document", "publisher", "published", "format", "url", "note")
        return source_upsert(slug=source.slug, **{f: getattr(source, f) for f in fields})


@admin.register(Indicator)
class IndicatorAdmin(CatalogAdmin):
    resource_classes = [IndicatorResource]
    list_display = ["code", "name", "unit", "topic"]
    list_filter = ["topic", "unit"]
    search_fields = ["code", "name", "definition"]
    autocomplete_fields = ["topic"]

    def upsert(self, indicator: Indicator) -> Indicator:
        fields = ("name", "unit", "definition", "order")
        return indicator_upsert(
            code=indicator.code, topic=indicator.topic.code, **{f: getattr(indicator, f) for f in fields}
        )


def other_members_spelling(dimension: Dimension, spellings, member: Member | None) -> list[str]:
    """The spellings another member of ``dimension`` already reads as (one spelling, one member)."""
    wanted = {normalize_label(s): s for s in spellings if s}
    taken = MemberAlias.objects.filter(dimension=dimension, normalized__in=list(wanted))
    if member is not None and member.pk:
        taken = taken.exclude(member_id=member.pk)
    return [f'"{wanted[n]}" (already {code})' for n, code in taken.values_list("normalized", "member__code")]


def extra_spellings(member: Member) -> list[str]:
    """A stored member's aliases other than its own label and code (which the service adds)."""
    if not member.pk:
        return []
    stored = Member.objects.get(pk=member.pk)
    own = {normalize_label(stored.label), normalize_label(stored.code)}
    return [a.alias for a in member.aliases.all() if a.normalized not in own]


class MemberForm(forms.ModelForm):
    """A member's label and code must not read as another member of its dimension."""

    def clean(self):
        data = super().clean()
        if self.instance.pk and "code" in self.changed_data:
            raise ValidationError("A member's code is its stable key and cannot change; add a new member instead.")
        dimension = data.get("dimension") or (self.instance.dimension if self.instance.dimension_id else None)
        if dimension is not None and dimension.pk:  # a dimension being created has no other members yet
            clashes = other_members_spelling(dimension, [data.get("label"), data.get("code")], self.instance)
            if clashes:
                raise ValidationError(f"Spellings used by another member: {', '.join(clashes)}.")
        return data


class MemberInline(admin.TabularInline):
    model = Member
    form = MemberForm
    fields = ["code", "label", "order"]
    extra = 0
    show_change_link = True


@admin.register(Dimension)
class DimensionAdmin(CatalogAdmin):
    resource_classes = [DimensionResource]
    list_display = ["code", "name", "order"]
    search_fields = ["code", "name"]
    inlines = [MemberInline]

    def upsert(self, dimension: Dimension) -> Dimension:
        return dimension_upsert(
            code=dimension.code, name=dimension.name, description=dimension.description, order=dimension.order
        )

    def save_formset(self, request, form, formset, change):
        formset.save(commit=False)  # writes nothing; names the new, changed and deleted members for the log
        for member_form in formset.forms:
            if not member_form.has_changed() or member_form in formset.deleted_forms:
                continue
            member = member_form.instance
            member_upsert(dimension=form.instance, code=member.code, label=member.label, order=member.order,
                          aliases=extra_spellings(member))  # fmt: skip
        for member in formset.deleted_objects:
            member.delete()


class AliasFormSet(forms.BaseInlineFormSet):
    """Aliases must not read as another member of the dimension."""

    def clean(self):
        super().clean()
        member = self.instance
        if not member.dimension_id:
            return
        kept = [f.cleaned_data.get("alias") for f in self.forms if f.cleaned_data and not f.cleaned_data.get("DELETE")]
        clashes = other_members_spelling(member.dimension, kept, member)
        if clashes:
            raise ValidationError(f"Spellings used by another member: {', '.join(clashes)}.")


class AliasInline(admin.TabularInline):
    model = MemberAlias
    formset = AliasFormSet
    fields = ["alias"]
    extra = 1


@admin.register(Member)
class MemberAdmin(ExportMixin, admin.ModelAdmin):
    resource_classes = [MemberResource]
    form = MemberForm
    list_display = ["label", "code", "dimension", "order"]
    list_filter = ["dimension"]
    search_fields = ["code", "label", "aliases__alias"]
    inlines = [AliasInline]

    def get_readonly_fields(self, request, obj=None):
        return ["dimension", "code"] if obj is not None else []

    def save_model(self, request, obj, form, change):
        """Saved with its spellings in save_related, once the aliases on the page are known."""

    def save_related(self, request, form, formsets, change):
        member = form.instance
        for formset in formsets:
            formset.save(commit=False)  # writes nothing; names the changed aliases for the log
        aliases = [
            f.cleaned_data["alias"]
            for formset in formsets
            for f in formset.forms
            if f.cleaned_data.get("alias") and not f.cleaned_data.get("DELETE")
        ]
        own = {normalize_label(member.label), normalize_label(member.code)}
        if change:  # the stored label and code are not kept as aliases when they change
            stored = Member.objects.get(pk=member.pk)
            own |= {normalize_label(stored.label), normalize_label(stored.code)}
        saved = member_upsert(dimension=member.dimension, code=member.code, label=member.label, order=member.order,
                              aliases=[a for a in aliases if normalize_label(a) not in own])  # fmt: skip
        member.pk = saved.pk
