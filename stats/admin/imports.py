"""Imports in the admin: upload, preview, confirm; and the record of every import."""

from __future__ import annotations

import hashlib
from pathlib import Path

from django import forms
from django.conf import settings
from django.contrib import admin
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import redirect
from django.template.response import TemplateResponse

from stats.importing import TableOptions, long_rows, preview_checks, read_dataset, table_rows
from stats.lookups import CatalogLookup
from stats.models import ImportRecord
from stats.services.errors import ImportFailed, RowError
from stats.services.observations import file_checksum, observations_import

UPLOADS = Path(settings.BASE_DIR) / ".local" / "imports"


class ObservationImportMixin:
    """The observation admin's import page (its URL is in ObservationAdmin.get_urls)."""

    def has_import_permission(self, request) -> bool:
        return request.user.has_perm("stats.import_observation")

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
