"""An observation's history as staff read it: who (by name), when, why, and each field old → new
as printed ("— → 315", not "None → 315.0000"). Read from the pghistory events the database records."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.apps import apps
from django.contrib.auth import get_user_model
from django.db.models import Count

from stats.models import Observation
from stats.models.observations import EDITABLE_FIELDS
from stats.services.observations.planning import printed

FIELD_LABELS = {name: str(Observation._meta.get_field(name).verbose_name) for name in EDITABLE_FIELDS}
FIELD_LABELS["value_text"] = "value as printed"


@dataclass
class HistoryEntry:
    event_id: int
    when: datetime
    what: str  # created, changed, deleted
    user: str
    reason: str
    channel: str
    changes: list[tuple[str, str, str]] = field(default_factory=list)  # (field, old, new) as printed


def event_counts(observation_ids: list[int]) -> dict[int, int]:
    """How many events each observation's history has, in one query."""
    events = Observation.events.field.model.objects.filter(pgh_obj_id__in=observation_ids)
    return dict(events.values_list("pgh_obj_id").annotate(n=Count("pgh_id")).order_by())


def field_changes(before, after) -> list[tuple[str, str, str]]:
    """The editable fields that differ between two states (an observation or an event), as printed."""
    return [
        (FIELD_LABELS[name], printed(getattr(before, name)), printed(getattr(after, name)))
        for name in EDITABLE_FIELDS
        if getattr(before, name) != getattr(after, name)
    ]


def observation_history(observation: Observation) -> list[HistoryEntry]:
    """Every recorded event of ``observation``, oldest first."""
    events = list(
        apps.get_model("stats", "ObservationEvent")
        .objects.filter(pgh_obj_id=observation.id)
        .select_related("pgh_context")
        .order_by("pgh_id")
    )
    metadata = [event.pgh_context.metadata if event.pgh_context else {} for event in events]
    user_ids = {m["user"] for m in metadata if isinstance(m.get("user"), int)}
    names = dict(get_user_model().objects.filter(id__in=user_ids).values_list("id", "username"))
    entries, previous = [], None
    for event, meta in zip(events, metadata, strict=True):
        if previous is None:
            what, changes = "created", [(FIELD_LABELS["value_text"], "—", printed(event.value_text))]
        else:
            what, changes = ("deleted" if event.pgh_label == "delete" else "changed"), field_changes(previous, event)
        user = meta.get("user")
        entries.append(
            HistoryEntry(
                event_id=event.pgh_id,
                when=event.pgh_created_at,
                what=what,
                user=names.get(user, f"user #{user}") if user is not None else "—",
                reason=meta.get("reason") or "—",
                channel=meta.get("channel") or "",
                changes=changes,
            )
        )
        previous = event
    return entries
