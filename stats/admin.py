"""The staff admin: browse and correct figures, import next year's tables, see every change.

Admin classes are declarations; every write goes through stats.services (imports, edits,
reverts), so the admin obeys the same validation and audit trail as the CLI and GraphQL.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from import_export.admin import ExportMixin

from stats.checks import mismatches, total_checks, warehouse_facts
from stats.importing import FORMATS, TableOptions, long_rows, preview_checks, read_dataset, table_rows
from stats.lookups import CatalogLookup
from stats.models import (
    Dimension,
    ImportRecord,
    Indicator,
    Member,
    MemberAlias,
    Observation,
    Restatement,
    Source,
    Topic,
)
from stats.resources import (
    DimensionResource,
    IndicatorResource,
    MemberResource,
    ObservationResource,
    SourceResource,
    TopicResource,
)
from stats.services.errors import ConflictError, ImportFailed, RowError
from stats.services.observations import (
    EDITABLE_FIELDS,
    file_checksum,
    observation_revert,
    observation_update,
    observations_import,
)

UPLOADS = Path(settings.BASE_DIR) / ".local" / "imports"
CONTENT_TYPES = {
    "csv": "text/csv",
    "json": "application/json",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}

admin.site.site_header = "NCMEC statistics warehouse"
admin.site.site_title = "NCMEC statistics"
admin.site.index_title = "Data staff"


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


class MemberFilter(admin.SimpleListFilter):
    """Filter observations by one member of one dimension (member_ids contains it)."""

    title = "dimension member"
    parameter_name = "member"

    def lookups(self, request, model_admin):
        return [(m.id, f"{m.dimension.name}: {m.label}") for m in Member.objects.select_related("dimension")]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.with_members([int(self.value())])
        return queryset


class RestatementInline(admin.TabularInline):
    model = Restatement
    fields = ["value_text", "qualifier", "quote", "flag", "note"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


class ObservationForm(forms.ModelForm):
    """An edit of a printed figure: needs a reason, and names the version it was opened at."""

    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Why this change? Recorded in the observation's history.",
    )
    expected_version = forms.IntegerField(widget=forms.HiddenInput)

    class Meta:
        model = Observation
        fields = list(EDITABLE_FIELDS)


@admin.register(Observation)
class ObservationAdmin(admin.ModelAdmin):
    form = ObservationForm
    list_display = ["indicator", "year", "breakdown", "value_text", "qualifier", "flag", "source", "is_preferred"]
    list_filter = ["year", "indicator__topic", "source", "qualifier", "flag", "period", "is_preferred", MemberFilter]
    search_fields = ["indicator__code", "indicator__name", "value_text", "quote", "note"]
    list_select_related = ["indicator", "source"]
    autocomplete_fields = ["indicator"]
    inlines = [RestatementInline]
    readonly_fields = [
        "indicator",
        "source",
        "year",
        "period",
        "since",
        "as_of",
        "breakdown",
        "table",
        "version",
        "history",
    ]
    fieldsets = [
        (None, {"fields": ["indicator", "source", "year", "period", "since", "as_of", "breakdown", "table"]}),
        ("As printed", {"fields": ["value_text", "value", "qualifier", "quote"]}),
        ("Data quality", {"fields": ["flag", "note", "corrected_value", "correction_reason"]}),
        ("Change", {"fields": ["reason", "expected_version", "version"]}),
        ("History", {"fields": ["history"]}),
    ]
    change_list_template = "admin/stats/observation/change_list.html"

    def has_add_permission(self, request):
        return False  # observations come in through imports, which validate and record them

    def has_import_permission(self, request) -> bool:
        return request.user.has_perm("stats.import_observation")

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        if obj is not None:
            form.base_fields["expected_version"].initial = obj.version
        return form

    @admin.display(description="breakdown")
    def breakdown(self, obs: Observation) -> str:
        lookup = self._lookup()
        members = sorted(lookup.members(obs.member_ids), key=lambda m: (m.dimension.order, m.dimension.code))
        return ", ".join(f"{m.dimension.name}: {m.label}" for m in members) or "total"

    def _lookup(self) -> CatalogLookup:
        return CatalogLookup.cached()

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "can_import": self.has_import_permission(request)}
        return super().changelist_view(request, extra_context)

    @admin.display(description="history")
    def history(self, obs: Observation):
        events = obs.events.select_related("pgh_context").order_by("pgh_id")
        rows = []
        previous = None
        for event in events:
            meta = event.pgh_context.metadata if event.pgh_context else {}
            changes = (
                "; ".join(
                    f"{f}: {getattr(previous, f)!s} → {getattr(event, f)!s}"
                    for f in EDITABLE_FIELDS
                    if getattr(previous, f) != getattr(event, f)
                )
                if previous
                else "created"
            )
            revert = reverse("admin:stats_observation_revert", args=[obs.id, event.pgh_id])
            rows.append(
                (
                    event.pgh_created_at.strftime("%Y-%m-%d %H:%M"),
                    meta.get("user") or "—",
                    meta.get("reason") or "—",
                    changes,
                    revert,
                )
            )
            previous = event
        if not rows:
            return "no recorded changes"
        return format_html(
            '<table class="history"><tr><th>when</th><th>user</th><th>reason</th><th>change</th><th></th></tr>'
            "{}</table>",
            format_html_join(
                "",
                '<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><a class="revert" href="{}">revert to this</a>'
                "</td></tr>",
                rows,
            ),
        )

    def save_model(self, request, obj, form, change):
        changes = {f: form.cleaned_data[f] for f in form.changed_data if f in EDITABLE_FIELDS}
        try:
            observation_update(
                observation_id=obj.id,
                changes=changes,
                reason=form.cleaned_data["reason"],
                user=request.user,
                expected_version=form.cleaned_data["expected_version"],
                channel="admin",
            )
        except (ConflictError, ValidationError) as exc:
            request._stats_save_error = exc  # per request: admin instances are shared between threads

    def response_change(self, request, obj):
        error = getattr(request, "_stats_save_error", None)
        if error is not None:
            text = "; ".join(error.messages) if isinstance(error, ValidationError) else str(error)
            self.message_user(request, f"Nothing was saved: {text}", messages.ERROR)
            return HttpResponseRedirect(request.path)
        return super().response_change(request, obj)

    def get_urls(self):
        custom = [
            path("import/", self.admin_site.admin_view(self.import_view), name="stats_observation_import"),
            path("data-quality/", self.admin_site.admin_view(self.data_quality_view), name="stats_data_quality"),
            path(
                "export/<str:file_format>/",
                self.admin_site.admin_view(self.export_view),
                name="stats_observation_export",
            ),
            path(
                "<int:pk>/revert/<int:event_id>/",
                self.admin_site.admin_view(self.revert_view),
                name="stats_observation_revert",
            ),
        ]
        return custom + super().get_urls()

    def revert_view(self, request, pk: int, event_id: int):
        obs = get_object_or_404(Observation, pk=pk)
        if not self.has_change_permission(request, obs):
            raise PermissionDenied
        if request.method == "POST":
            reason = request.POST.get("reason", "").strip()
            try:
                observation_revert(event_id=event_id, reason=reason, user=request.user)
            except ValidationError as exc:
                self.message_user(request, "Not reverted: " + "; ".join(exc.messages), messages.ERROR)
            else:
                self.message_user(request, f"Observation #{pk} reverted to its state of event #{event_id}.")
                return redirect("admin:stats_observation_change", pk)
        context = {**self.admin_site.each_context(request), "obs": obs, "event_id": event_id, "title": "Revert"}
        return TemplateResponse(request, "admin/stats/observation/revert.html", context)

    def export_view(self, request, file_format: str):
        """The observations of the current list (its filters and search) as the flat facts table."""
        if not self.has_view_permission(request) or file_format not in FORMATS:
            raise PermissionDenied
        changelist = self.get_changelist_instance(request)
        queryset = changelist.get_queryset(request)
        data = ObservationResource().export(queryset).export(file_format)
        content_type = CONTENT_TYPES[file_format]
        response = HttpResponse(data, content_type=content_type)
        response["Content-Disposition"] = f'attachment; filename="observations.{file_format}"'
        return response

    def data_quality_view(self, request):
        if not self.has_view_permission(request):
            raise PermissionDenied
        unexplained, explained = mismatches(total_checks(warehouse_facts()))
        flagged = Observation.objects.flagged().select_related("indicator", "source").order_by("source__edition", "id")
        context = {
            **self.admin_site.each_context(request),
            "title": "Data quality",
            "unexplained": unexplained,
            "explained": explained,
            "flagged": flagged,
        }
        return TemplateResponse(request, "admin/stats/observation/data_quality.html", context)

    def import_view(self, request):
        if not self.has_import_permission(request):
            raise PermissionDenied
        form = ImportForm(request.POST or None, request.FILES or None)
        context = {**self.admin_site.each_context(request), "title": "Import observations", "form": form}
        if request.method == "POST" and form.is_valid():
            confirm = "confirm" in request.POST
            try:
                data, name = form.file_data(confirm)
                rows = form.observation_rows(read_dataset(data, name))
                result = observations_import(
                    rows=rows,
                    user=request.user,
                    reason=form.cleaned_data["reason"],
                    channel="admin",
                    shape=form.cleaned_data["shape"],
                    file_name=name,
                    checksum=file_checksum(data),
                    options=form.options(),
                    dry_run=not confirm,
                )
            except ImportFailed as exc:
                context["errors"] = [str(e) for e in exc.errors]
            else:
                if confirm:
                    self.message_user(
                        request,
                        f"Imported {name}: {result.new} new, {result.changed} changed, {result.unchanged} unchanged.",
                    )
                    return redirect("admin:stats_observation_changelist")
                unexplained, explained = preview_checks(result, CatalogLookup.load())
                context.update(
                    result=result,
                    stored=form.stored_name(data, name),
                    unexplained=unexplained,
                    explained=explained,
                    new_rows=result.new_rows[:200],
                )
        return TemplateResponse(request, "admin/stats/observation/import.html", context)


class ImportForm(forms.Form):
    """Upload → preview → confirm. The confirmed import re-reads the file kept on the server by its
    checksum, never data re-posted by the browser."""

    SHAPES = [
        (ImportRecord.Shape.LONG, "Long: one observation per row"),
        (ImportRecord.Shape.TABLE, "Table: as printed in the report"),
    ]
    file = forms.FileField(required=False, allow_empty_file=True, help_text="CSV (UTF-8), XLSX or JSON.")
    stored = forms.CharField(required=False, widget=forms.HiddenInput)
    shape = forms.ChoiceField(choices=SHAPES)
    indicator = forms.CharField(required=False, help_text="Table imports: indicator code, e.g. missing.cases.")
    year = forms.IntegerField(required=False, help_text="Table imports: the year of the figures.")
    source = forms.CharField(required=False, help_text="Table imports: source slug, e.g. impact-2025.")
    rows = forms.CharField(required=False, help_text="Table imports: dimension down the side, e.g. state.")
    columns = forms.CharField(required=False, help_text="Table imports: dimension across the top, e.g. case_status.")
    title = forms.CharField(required=False, help_text="Table imports: the table's printed title.")
    reason = forms.CharField(required=False, help_text="Why? Required when the import changes existing figures.")

    def clean(self):
        data = super().clean()
        if not data.get("file") and not data.get("stored"):
            raise ValidationError("Choose a file to import.")
        if data.get("shape") == ImportRecord.Shape.TABLE:
            missing = [f for f in ("indicator", "year", "source", "rows") if not data.get(f)]
            if missing:
                raise ValidationError(f"A table import needs: {', '.join(missing)}.")
        return data

    def file_data(self, confirm: bool) -> tuple[bytes, str]:
        stored = self.cleaned_data.get("stored")
        if confirm and stored:
            checksum, _, name = stored.partition(":")
            path = UPLOADS / checksum
            if len(checksum) != 64 or not path.is_file():
                raise ImportFailed([RowError(None, None, "the previewed file is no longer here; upload it again")])
            return path.read_bytes(), name
        upload = self.cleaned_data["file"]
        if upload is None:
            raise ImportFailed([RowError(None, None, "choose a file to import")])
        if upload.size > settings.IMPORT_MAX_BYTES:
            limit = settings.IMPORT_MAX_BYTES // (1024 * 1024)
            raise ImportFailed([RowError(None, None, f"the file is over the size limit of {limit} MB; split it")])
        return upload.read(), upload.name

    def stored_name(self, data: bytes, name: str) -> str:
        UPLOADS.mkdir(parents=True, exist_ok=True)
        checksum = hashlib.sha256(data).hexdigest()
        (UPLOADS / checksum).write_bytes(data)
        return f"{checksum}:{name}"

    def options(self) -> dict:
        keys = ("indicator", "year", "source", "rows", "columns", "title")
        return {k: self.cleaned_data.get(k) for k in keys if self.cleaned_data.get(k)}

    def observation_rows(self, dataset):
        if self.cleaned_data["shape"] == ImportRecord.Shape.TABLE:
            d = self.cleaned_data
            return table_rows(
                dataset,
                TableOptions(
                    indicator=d["indicator"],
                    year=d["year"],
                    source=d["source"],
                    rows=d["rows"],
                    columns=d.get("columns") or None,
                    title=d.get("title") or "",
                ),
            )
        return long_rows(dataset, CatalogLookup.load())


@admin.register(ImportRecord)
class ImportRecordAdmin(admin.ModelAdmin):
    list_display = [
        "created_at",
        "user",
        "channel",
        "shape",
        "status",
        "file_name",
        "rows",
        "new",
        "changed",
        "unchanged",
    ]
    list_filter = ["status", "shape", "channel"]
    search_fields = ["file_name", "checksum", "reason"]
    readonly_fields = [f.name for f in ImportRecord._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
