"""Staff edits of one observation: change, correct, flag, revert; audited with a reason."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pghistory

from stats.lookups import CatalogLookup
from stats.models import Observation
from stats.models.observations import EDITABLE_FIELDS
from stats.services.locking import edit_transaction
from stats.services.observations.rows import ObservationRow
from stats.services.observations.validation import RowValidator

NUMBERS = ("value", "corrected_value")  # the editable fields that may be None (texts are "" when empty)


def user_id(user) -> int | None:
    return user.pk if getattr(user, "is_authenticated", False) else None


def database_message(exc: Exception) -> str:
    diag = getattr(exc, "diag", None) or getattr(getattr(exc, "__cause__", None), "diag", None)
    return getattr(diag, "message_primary", None) or str(exc).splitlines()[0]


def observation_update(
    *,
    observation_id: int,
    changes: dict[str, Any],
    reason: str,
    user=None,
    expected_version: int | None = None,
    channel: str = "admin",
) -> Observation:
    """Change one observation's printed figure, flag or correction, with an audited reason.

    The changed observation is checked by the import's own validator (the same rules and messages
    as an imported row) and stored as it normalizes it. Refuses (ConflictError) when
    ``expected_version`` is given and someone saved in between, so no edit silently overwrites
    another; BusyError when an import holds the figure for longer than an editor should wait.
    """
    from django.core.exceptions import ValidationError

    from stats.services.errors import ConflictError

    if not reason or not str(reason).strip():
        raise ValidationError({"reason": "A reason is required for every change to an observation."})
    reason = str(reason).strip()
    unknown = set(changes) - set(EDITABLE_FIELDS)
    if unknown:
        raise ValidationError({f: "This field cannot be changed here." for f in unknown})
    with edit_transaction(), pghistory.context(user=user_id(user), reason=reason, channel=channel):
        # Only the observation is locked: its indicator and source are read, not changed (an import holds
        # them FOR KEY SHARE until it commits, as its rows name them: migration 0016).
        obs = Observation.objects.select_for_update(of=("self",)).select_related("indicator", "source")
        obs = obs.filter(id=observation_id)
        obs = obs.first()
        if obs is None:
            raise ValidationError({"id": f"observation #{observation_id} does not exist"})
        if expected_version is not None and obs.version != expected_version:
            raise ConflictError(
                f"observation #{obs.id} was changed by someone else since you opened it "
                f"(version {obs.version}, you saw {expected_version}); reload it and apply your change again"
            )
        fields = {name: getattr(obs, name) for name in EDITABLE_FIELDS} | changes
        text_changed = "value_text" in changes and "value" not in changes
        if text_changed:
            fields["value"] = None  # read from the new text, as an import reads it
        if fields["corrected_value"] is None and "corrected_value" in changes:
            fields["correction_reason"] = changes.get("correction_reason", "")  # a removed correction
        elif fields["corrected_value"] is not None and not str(fields["correction_reason"] or "").strip():
            fields["correction_reason"] = reason
        valid = _validated(obs, fields, text_changed)
        for name in EDITABLE_FIELDS:
            setattr(obs, name, valid[name])
        obs.version += 1
        obs.save(update_fields=[*EDITABLE_FIELDS, "version", "updated_at"])
    return obs


def _validated(obs: Observation, fields: dict[str, Any], text_changed: bool) -> dict[str, Any]:
    """The edited observation as an imported row: the validator's values, or its errors by field."""
    from django.core.exceptions import ValidationError

    row = ObservationRow(
        indicator=obs.indicator.code,
        source=obs.source.slug,
        year=obs.year,
        period=obs.period,
        since=obs.since,
        as_of=obs.as_of,
        table=obs.table,
        row=f"observation #{obs.id}",
        **{name: "" if fields[name] is None and name not in NUMBERS else fields[name] for name in EDITABLE_FIELDS},
    )
    valid, errors = RowValidator(CatalogLookup.cached()).validate(row)
    if errors:
        by_field: dict[str, list[str]] = {}
        for error in errors:
            field = error.column if error.column in EDITABLE_FIELDS else None
            if field == "value" and text_changed:
                field = "value_text"  # the value was read from the printed text the editor typed
            by_field.setdefault(field or "__all__", []).append(error.message)
        raise ValidationError(by_field)
    return valid.fields


def observation_correct(
    *,
    observation_id: int,
    value: Decimal | None,
    reason: str,
    user=None,
    expected_version: int | None = None,
    channel: str = "graphql",
) -> Observation:
    """Record the right value of a printed figure (the printed value stays); None removes it."""
    return observation_update(
        observation_id=observation_id,
        changes={"corrected_value": value, "correction_reason": reason.strip() if value is not None else ""},
        reason=reason,
        user=user,
        expected_version=expected_version,
        channel=channel,
    )


def observation_flag(
    *,
    observation_id: int,
    flag: str,
    note: str,
    user=None,
    expected_version: int | None = None,
    channel: str = "graphql",
) -> Observation:
    """Set or clear (empty ``flag``) a data-quality flag; the note says what is wrong."""
    return observation_update(
        observation_id=observation_id,
        changes={"flag": flag, "note": note},
        reason=note or f"flag {flag or 'cleared'}",
        user=user,
        expected_version=expected_version,
        channel=channel,
    )


def observation_revert(*, event_id: int, reason: str, user=None, channel: str = "admin") -> Observation:
    """Put an observation back to the state a history event recorded (its snapshot after that event)."""
    from django.apps import apps
    from django.core.exceptions import ValidationError

    event = apps.get_model("stats", "ObservationEvent").objects.filter(pgh_id=event_id).first()
    if event is None:
        raise ValidationError({"event": f"history event #{event_id} does not exist"})
    changes = {name: getattr(event, name) for name in EDITABLE_FIELDS}
    return observation_update(
        observation_id=event.pgh_obj_id, changes=changes, reason=reason, user=user, channel=channel
    )
