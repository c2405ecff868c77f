"""Imports in the admin: upload, preview, confirm; and the record of every import.

The uploaded file waits for its confirm in the database (ImportPreview), so any web process can
confirm it and no folder has to be writable. The confirm names the preview by id and checksum;
only the user who uploaded it can read it, and what is written is exactly what was previewed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import BinaryIO

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.validators import RegexValidator
from django.shortcuts import redirect
from django.template.response import TemplateResponse

from stats.importing import TableOptions, long_rows, read_dataset, table_rows
from stats.lookups import CatalogLookup
from stats.models import ImportPreview, ImportRecord
from stats.services.errors import ImportFailed, RowError, error_summary
from stats.services.observations import ImportResult, import_revert, observations_import
from stats.services.observations.planning import printed
from stats.services.observations.previews import preview_file, preview_store

LISTED = 200  # figures and errors listed on one page; the rest are counted
TABLE_OPTIONS = ("indicator", "year", "source", "rows", "columns", "title")


class ImportForm(forms.Form):
    """The upload: a file, its shape, and for a table what it counts."""

    SHAPES = [
        (ImportRecord.Shape.LONG, "Long: one observation per row"),
        (ImportRecord.Shape.TABLE, "Table: as printed in the report"),
    ]
    file = forms.FileField(allow_empty_file=True, help_text="CSV (UTF-8), XLSX or JSON.")
    shape = forms.ChoiceField(choices=SHAPES)
    indicator = forms.CharField(required=False, help_text="Table imports: indicator code, e.g. missing.cases.")
    year = forms.IntegerField(required=False, help_text="Table imports: the year of the figures.")
    source = forms.CharField(required=False, help_text="Table imports: source slug, e.g. impact-2025.")
    rows = forms.CharField(required=False, help_text="Table imports: dimension down the side, e.g. state.")
    columns = forms.CharField(required=False, help_text="Table imports: dimension across the top, e.g. case_status.")
    title = forms.CharField(required=False, help_text="Table imports: the table's printed title.")
    reason = forms.CharField(required=False, help_text="Why? Required when the import changes existing figures.")

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > settings.IMPORT_MAX_BYTES:  # before reading it
            limit = settings.IMPORT_MAX_BYTES // (1024 * 1024)
            raise ValidationError(f"the file is over the size limit of {limit} MB; split it")
        return upload

    def clean(self):
        data = super().clean()
        if data.get("shape") == ImportRecord.Shape.TABLE:
            missing = [f for f in ("indicator", "year", "source", "rows") if not data.get(f)]
            if missing:
                raise ValidationError(f"A table import needs: {', '.join(missing)}.")
        return data

    def options(self) -> dict:
        if self.cleaned_data["shape"] != ImportRecord.Shape.TABLE:
            return {}
        return {k: self.cleaned_data[k] for k in TABLE_OPTIONS if self.cleaned_data.get(k)}


class ConfirmForm(forms.Form):
    """The confirm of a stored preview, and what the preview asked to settle."""

    preview = forms.IntegerField(widget=forms.HiddenInput)
    checksum = forms.CharField(widget=forms.HiddenInput, validators=[RegexValidator(r"^[0-9a-f]{64}$")])
    sum_mismatch = forms.BooleanField(required=False, label="Store as printed and flag as a sum mismatch")
    sum_mismatch_note = forms.CharField(
        required=False,
        label="Note",
        widget=forms.Textarea(attrs={"rows": 2, "cols": 60}),
        help_text="Why the figures are stored as printed, e.g. “the report's total; parts as printed”.",
    )
    confirm_years = forms.BooleanField(required=False, label="Yes, the source prints figures for these years")

    def clean(self):
        data = super().clean()
        if data.get("sum_mismatch") and not (data.get("sum_mismatch_note") or "").strip():
            raise ValidationError("Say in the note why the totals are stored as printed.")
        return data

    def note(self) -> str:
        return self.cleaned_data["sum_mismatch_note"].strip() if self.cleaned_data.get("sum_mismatch") else ""


def observation_rows(shape: str, options: dict, data: BinaryIO, file_name: str):
    """The file's rows as the import service takes them, read the way its shape says."""
    dataset = read_dataset(data, file_name)
    if shape == ImportRecord.Shape.TABLE:
        table = TableOptions(**{k: options.get(k) for k in ("indicator", "year", "source", "rows", "columns")},
                             title=options.get("title") or "")  # fmt: skip
        return table_rows(dataset, table)
    return long_rows(dataset, CatalogLookup.load())


@dataclass
class Figure:
    """One new or changed figure as the preview lists it: where it goes and what it reads."""

    row: int | str | None
    indicator: str
    year: int
    source: str
    members: dict[int, str]  # dimension id -> member label
    printed: str  # "205", or "202 → 205" for a change
    also: str = ""  # other fields a change touches: "note: — → erratum"
    labels: tuple[str, ...] = ()  # the member of each shown dimension ("Total" where summed over)


def preview_figures(result: ImportResult, lookup: CatalogLookup) -> tuple[list, list[Figure], list[Figure]]:
    """The first new and changed figures with their breakdown labels, and the dimensions to show."""

    def figure(row, indicator_id, source_id, year, member_ids, printed_value, also=""):
        members = {m.dimension_id: m.label for m in lookup.members(member_ids)}
        return Figure(row, lookup.indicators_by_id[indicator_id].code, year, lookup.sources_by_id[source_id].slug,
                      members, printed_value, also)  # fmt: skip

    new = [
        figure(r.row, r.indicator_id, r.source_id, r.values[0], r.member_ids, printed(r.fields["value_text"]))
        for r in result.new_rows[:LISTED]
    ]
    changed = []
    for c in result.changes[:LISTED]:
        value = [f"{old} → {now}" for name, old, now in c.differences if name in ("value_text", "value")]
        also = "; ".join(
            f"{name}: {old} → {now}" for name, old, now in c.differences if name not in ("value_text", "value")
        )
        changed.append(figure(c.row, c.indicator_id, c.source_id, c.year, c.member_ids,
                              value[0] if value else printed(c.after["value_text"]), also))  # fmt: skip
    used = {d for f in new + changed for d in f.members}
    dimensions = sorted((d for d in lookup.dimensions.values() if d.id in used), key=lambda d: (d.order, d.code))
    for f in new + changed:
        f.labels = tuple(f.members.get(d.id, "Total") for d in dimensions)
    return dimensions, new, changed


class ObservationImportMixin:
    """The observation admin's import page (its URL is in ObservationAdmin.get_urls)."""

    def has_import_permission(self, request) -> bool:
        return request.user.has_perm("stats.import_observation")

    def import_view(self, request):
        if not self.has_import_permission(request):
            raise PermissionDenied
        context = {**self.admin_site.each_context(request), "title": "Import observations"}
        if request.method == "POST" and "confirm" in request.POST:
            return self._confirm(request, context)
        form = ImportForm(request.POST or None, request.FILES or None)
        context["form"] = form
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            # Stored first and previewed as read back: the confirm writes exactly what was previewed.
            preview = preview_store(upload=upload, user=request.user, file_name=upload.name,
                                    shape=form.cleaned_data["shape"], options=form.options(),
                                    reason=form.cleaned_data["reason"])  # fmt: skip
            if self._preview(request, preview, context) is None:
                preview.delete()
            else:
                context["confirm_form"] = ConfirmForm(initial={"preview": preview.id, "checksum": preview.checksum})
        return TemplateResponse(request, "admin/stats/observation/import.html", context)

    def _preview(self, request, preview: ImportPreview, context: dict) -> ImportResult | None:
        """A dry run of the stored file: the preview's figures in ``context``, or its errors."""
        try:
            result = self._import(request, preview, dry_run=True)
        except ImportFailed as exc:
            context["import_errors"] = error_summary(exc.errors, limit=LISTED)
            return None
        dimensions, new, changed = preview_figures(result, CatalogLookup.load())
        context.update(result=result, preview=preview, dimensions=dimensions, new_figures=new, changed_figures=changed)
        return result

    def _import(self, request, preview: ImportPreview, *, dry_run: bool, confirm: ConfirmForm | None = None):
        with preview_file(preview) as handle:
            return observations_import(
                rows=observation_rows(preview.shape, preview.options, handle, preview.file_name),
                user=request.user,
                reason=preview.reason,
                channel="admin",
                shape=preview.shape,
                file_name=preview.file_name,
                checksum=preview.checksum,
                options=preview.options,
                dry_run=dry_run,
                sum_mismatch_note=confirm.note() if confirm else "",
                confirm_years_outside_edition=bool(confirm and confirm.cleaned_data["confirm_years"]),
            )

    def _confirm(self, request, context: dict):
        confirm = ConfirmForm(request.POST)
        valid = confirm.is_valid()
        named = confirm.cleaned_data
        preview = None
        if "preview" in named and "checksum" in named:
            preview = ImportPreview.objects.for_confirm(
                preview_id=named["preview"], checksum=named["checksum"], user=request.user
            ).first()
        if preview is None:
            message = "this preview is not yours, has expired or was already confirmed; upload the file again"
            context["import_errors"] = error_summary([RowError(None, None, message)])
            context["form"] = ImportForm()
            return TemplateResponse(request, "admin/stats/observation/import.html", context)
        try:
            if not valid:
                raise ImportFailed([RowError(None, None, e) for e in confirm.non_field_errors()])
            result = self._import(request, preview, dry_run=False, confirm=confirm)
        except ImportFailed as exc:
            # Shown above the same preview, so the editor settles it there and confirms again.
            errors = error_summary(exc.errors, limit=LISTED)
            if self._preview(request, preview, context) is None:
                context["form"] = ImportForm()
            context["import_errors"] = errors
            context["confirm_form"] = confirm
            return TemplateResponse(request, "admin/stats/observation/import.html", context)
        preview.delete()
        flagged = f", {result.flagged} flagged as a sum mismatch" if result.flagged else ""
        self.message_user(
            request,
            f"Imported {preview.file_name}: {result.new} new, {result.changed} changed, "
            f"{result.unchanged} unchanged{flagged}.",
        )
        return redirect("admin:stats_observation_changelist")


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
    actions = ["revert_imports"]

    @admin.action(permissions=["revert"], description="Revert the selected imports as a whole")
    def revert_imports(self, request, queryset):
        for record in queryset:
            try:
                done = import_revert(record.pk, reason=f"import #{record.pk} reverted in the admin", user=request.user)
            except ValidationError as exc:
                self.message_user(request, f"{record}: {'; '.join(exc.messages)}", messages.ERROR)
            else:
                self.message_user(request, f"{record}: {done.deleted} removed, {done.restored} restored.")

    def has_revert_permission(self, request) -> bool:
        return request.user.has_perm("stats.import_observation")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
