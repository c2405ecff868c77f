"""Observations in the admin: browse, correct with a reason, history and revert, export, data quality."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import path

from stats.admin.imports import ObservationImportMixin
from stats.checks import mismatches, total_checks, warehouse_facts
from stats.exports import facts_response
from stats.history import field_changes, observation_history
from stats.importing import FORMATS
from stats.lookups import CatalogLookup
from stats.models import Member, Observation, Restatement
from stats.services.errors import BusyError, ConflictError
from stats.services.observations import EDITABLE_FIELDS, observation_revert, observation_update


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
    """An edit of a printed figure: one reason, and the version it was opened at.

    The reason is recorded in the history and, when the corrected value changes, is the
    correction's reason too (so the form asks for it once).
    """

    reason = forms.CharField(
        label="Reason for this change",
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Recorded in the observation's history; for a corrected value, also how it was derived.",
    )
    expected_version = forms.IntegerField(widget=forms.HiddenInput)

    class Meta:
        model = Observation
        fields = [f for f in EDITABLE_FIELDS if f != "correction_reason"]


@admin.register(Observation)
class ObservationAdmin(ObservationImportMixin, admin.ModelAdmin):
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
        "correction_reason",
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
    object_history_template = "admin/stats/observation/history.html"

    def has_add_permission(self, request):
        return False  # observations come in through imports, which validate and record them

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
        context = {"entries": observation_history(obs), "observation_id": obs.id, "can_revert": True}
        return render_to_string("admin/stats/observation/history_table.html", context)

    def history_view(self, request, object_id, extra_context=None):
        """The HISTORY button: the recorded changes (who, why, old → new as printed), not Django's log."""
        obs = self.get_object(request, unquote(object_id))
        if obs is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_view_or_change_permission(request, obs):
            raise PermissionDenied
        context = {
            **self.admin_site.each_context(request),
            "title": f"History: {obs}",
            "object": obs,
            "opts": self.opts,
            "entries": observation_history(obs),
            "can_revert": self.has_change_permission(request, obs),
            **(extra_context or {}),
        }
        return TemplateResponse(request, self.object_history_template, context)

    def save_model(self, request, obj, form, change):
        changes = {f: form.cleaned_data[f] for f in form.changed_data if f in EDITABLE_FIELDS}
        reason = form.cleaned_data["reason"].strip()
        if "corrected_value" in changes:
            changes["correction_reason"] = reason if changes["corrected_value"] is not None else ""
        try:
            observation_update(
                observation_id=obj.id,
                changes=changes,
                reason=reason,
                user=request.user,
                expected_version=form.cleaned_data["expected_version"],
                channel="admin",
            )
        except (BusyError, ConflictError, ValidationError) as exc:
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
        event = obs.events.filter(pgh_id=event_id).first()
        if event is None:
            raise Http404(f"observation #{pk} has no history event #{event_id}")
        if request.method == "POST":
            reason = request.POST.get("reason", "").strip()
            try:
                observation_revert(event_id=event_id, reason=reason, user=request.user)
            except ValidationError as exc:
                self.message_user(request, "Not reverted: " + "; ".join(exc.messages), messages.ERROR)
            except BusyError as exc:
                self.message_user(request, f"Not reverted: {exc}", messages.ERROR)
            else:
                self.message_user(request, f"Observation #{pk} reverted to its state of event #{event_id}.")
                return redirect("admin:stats_observation_change", pk)
        context = {
            **self.admin_site.each_context(request),
            "title": "Revert",
            "obs": obs,
            "event": event,
            "changes": field_changes(obs, event),
            "opts": self.opts,
        }
        return TemplateResponse(request, "admin/stats/observation/revert.html", context)

    def export_view(self, request, file_format: str):
        """The observations of the current list (its filters and search) as the flat facts table."""
        if not self.has_view_permission(request) or file_format not in FORMATS:
            raise PermissionDenied
        changelist = self.get_changelist_instance(request)
        queryset = changelist.get_queryset(request)
        return facts_response(queryset, file_format)

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
