"""Staff edits of one observation: change, correct, flag, revert; audited with a reason."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pghistory

from stats.models import Flag, Observation
from stats.models.observations import EDITABLE_FIELDS
from stats.printed import ValueTextError, parse_value_text
from stats.services.locking import edit_transaction
from stats.services.observations.validation import fits_unit, unit_rule


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

    Refuses (ConflictError) when ``expected_version`` is given and someone saved in between,
    so no edit silently overwrites another; BusyError when an import holds the figure for longer
    than an editor should wait.
    """
    from django.core.exceptions import ValidationError

    from stats.services.errors import ConflictError

    if not reason or not reason.strip():
        raise ValidationError({"reason": "A reason is required for every change to an observation."})
    unknown = set(changes) - set(EDITABLE_FIELDS)
    if unknown:
        raise ValidationError({f: "This field cannot be changed here." for f in unknown})
    with (
        edit_transaction(),
        pghistory.context(user=user_id(user), reason=reason.strip(), channel=channel),
    ):
        obs = Observation.objects.select_for_update().select_related("indicator").filter(id=observation_id).first()
        if obs is None:
            raise ValidationError({"id": f"observation #{observation_id} does not exist"})
        if expected_version is not None and obs.version != expected_version:
            raise ConflictError(
                f"observation #{obs.id} was changed by someone else since you opened it "
                f"(version {obs.version}, you saw {expected_version}); reload it and apply your change again"
            )
        for name, value in changes.items():
            setattr(obs, name, value)
        if "value_text" in changes and "value" not in changes and obs.value_text:
            try:
                obs.value = parse_value_text(obs.value_text).value
            except ValueTextError as exc:
                raise ValidationError({"value_text": str(exc)}) from exc
        errors = {}
        for name in ("value", "corrected_value"):
            v = getattr(obs, name)
            if v is not None and not fits_unit(obs.indicator.unit, Decimal(v)):
                errors[name] = f"{v} is out of range for {obs.indicator.code} ({unit_rule(obs.indicator.unit)})"
        if obs.corrected_value is None and "corrected_value" in changes:
            obs.correction_reason = changes.get("correction_reason", "")
        elif obs.corrected_value is not None and not obs.correction_reason:
            obs.correction_reason = reason.strip()
        if obs.flag and obs.flag not in Flag.values:
            errors["flag"] = f"unknown flag '{obs.flag}' (expected one of {', '.join(Flag.values)})"
        if obs.value is None and obs.flag != Flag.MISSING_VALUE:
            errors["value"] = "A value is required unless the flag is missing_value."
        if errors:
            raise ValidationError(errors)
        obs.version += 1
        obs.save()
    return obs


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
