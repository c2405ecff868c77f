"""The catalog in the admin: topics, sources, indicators, dimensions and their members."""

from __future__ import annotations

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html
from import_export.admin import ExportMixin

from stats.models import Dimension, Indicator, Member, MemberAlias, Source, Topic
from stats.resources import DimensionResource, IndicatorResource, MemberResource, SourceResource, TopicResource


@admin.register(Topic)
class TopicAdmin(ExportMixin, admin.ModelAdmin):
    resource_classes = [TopicResource]
    list_display = ["code", "name", "order"]
    search_fields = ["code", "name"]


@admin.register(Source)
class SourceAdmin(ExportMixin, admin.ModelAdmin):
    resource_classes = [SourceResource]
    list_display = ["slug", "title", "kind", "edition", "document", "observation_count"]
    list_filter = ["kind", "edition"]
    search_fields = ["slug", "title", "document"]

    @admin.display(description="observations")
    def observation_count(self, source: Source):
        url = reverse("admin:stats_observation_changelist") + f"?source__id__exact={source.id}"
        return format_html('<a href="{}">{}</a>', url, source.observations.count())


class MemberInline(admin.TabularInline):
    model = Member
    fields = ["code", "label", "order"]
    extra = 0
    show_change_link = True


@admin.register(Dimension)
class DimensionAdmin(ExportMixin, admin.ModelAdmin):
    resource_classes = [DimensionResource]
    list_display = ["code", "name", "order"]
    search_fields = ["code", "name"]
    inlines = [MemberInline]


class AliasInline(admin.TabularInline):
    model = MemberAlias
    fields = ["alias"]
    extra = 1


@admin.register(Member)
class MemberAdmin(ExportMixin, admin.ModelAdmin):
    resource_classes = [MemberResource]
    list_display = ["label", "code", "dimension", "order"]
    list_filter = ["dimension"]
    search_fields = ["code", "label", "aliases__alias"]
    inlines = [AliasInline]

    def save_formset(self, request, form, formset, change):
        for alias in formset.save(commit=False):
            alias.dimension_id = form.instance.dimension_id
            alias.save()
        for alias in formset.deleted_objects:
            alias.delete()


@admin.register(Indicator)
class IndicatorAdmin(ExportMixin, admin.ModelAdmin):
    resource_classes = [IndicatorResource]
    list_display = ["code", "name", "unit", "topic"]
    list_filter = ["topic", "unit"]
    search_fields = ["code", "name", "definition"]
    autocomplete_fields = ["topic"]
