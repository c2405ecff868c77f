"""What an import would do against the stored data: new, changed, unchanged, restatements, conflicts."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from stats.checks import TotalCheck
from stats.models import ImportRecord, Observation, Restatement
from stats.printed import format_decimal
from stats.services.errors import RowError
from stats.services.observations.rows import (
    APPROXIMATE,
    COMPARED_FIELDS,
    COMPARED_INDEX,
    FIELD_INDEX,
    QUALIFIER,
    RESTATEMENT_FIELDS,
    RESTATEMENT_INDEX,
    VALUE,
    ValidRow,
)


def printed(value: Any) -> str:
    """A stored value as a person reads it: 315.0000 → "315", None or "" → "—"."""
    if value is None or value == "":
        return "—"
    if isinstance(value, Decimal):
        return format_decimal(value)
    return str(value)


@dataclass
class Change:
    """An existing figure the import changes: which one (ids, for labels) and what differs."""

    observation_id: int
    row: int | str | None
    before: dict[str, Any]
    after: dict[str, Any]
    indicator_id: int | None = None
    source_id: int | None = None
    year: int | None = None
    member_ids: tuple[int, ...] = ()

    @property
    def differences(self) -> list[tuple[str, str, str]]:
        """(field, old, new) as printed; the value shows as its printed text ("202 → 205")."""
        names = [k for k in COMPARED_FIELDS if not _same(self.before.get(k), self.after.get(k))]
        if "value_text" in names and "value" in names:
            names.remove("value")
        return [(name, printed(self.before.get(name)), printed(self.after.get(name))) for name in names]


@dataclass
class ImportResult:
    rows: int = 0
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    restatements: int = 0
    changes: list[Change] = field(default_factory=list)
    kept: list[Change] = field(default_factory=list)  # changes left out: staff changed the figure since
    new_rows: list[ValidRow] = field(default_factory=list)
    valid_rows: list[ValidRow] = field(default_factory=list)  # every row that will be an observation, as stored
    record: ImportRecord | None = None
    dry_run: bool = False
    # Printed totals whose parts do not add up: (unexplained, explained by a flag or a correction).
    mismatches: list[TotalCheck] = field(default_factory=list)
    explained_mismatches: list[TotalCheck] = field(default_factory=list)
    flagged: int = 0  # figures flagged as a sum mismatch by this import (``sum_mismatch_note``)
    # Figures for a year other than their source's edition: source slug -> (edition, years).
    years_outside_edition: dict[str, tuple[int, list[int]]] = field(default_factory=dict)


def _precision_rank(row: ValidRow) -> tuple:
    """Which of several printings of one fact is the observation: exact, then table, then first."""
    v = row.values
    return (v[VALUE] is None, v[QUALIFIER] in APPROXIMATE, not row.from_table)


def merge_printings(valid: list[ValidRow], merge: bool) -> tuple[list[ValidRow], dict, list[RowError]]:
    """Group rows by fact key; with ``merge`` the extra printings become restatements.

    Returns the observations in file order (first printing of each fact), the restatements of the
    facts printed more than once, and (without ``merge``) one duplicate error per extra printing.
    """
    first: dict[tuple, ValidRow] = {}
    extra: dict[tuple, list[ValidRow]] = {}
    for row in valid:
        key = row.key
        if first.setdefault(key, row) is not row:
            extra.setdefault(key, []).append(row)
    if not extra:
        return valid, {}, []
    primaries, restatements, errors = [], {}, []
    for key, row in first.items():
        dups = extra.get(key)
        if dups is None:
            primaries.append(row)
            continue
        if not merge:
            first_row = row.row
            for dup in dups:
                errors.append(
                    RowError(
                        dup.row,
                        None,
                        f"duplicate of row {first_row}: same indicator, source, year, period and breakdown",
                    )
                )
            continue
        ordered = sorted([row, *dups], key=_precision_rank)
        primaries.append(ordered[0])
        restatements[key] = ordered[1:]
    return primaries, restatements, errors


def _restatement_values(rows: list[ValidRow]) -> list[dict]:
    return [{k: r.values[i] for k, i in zip(RESTATEMENT_FIELDS, RESTATEMENT_INDEX, strict=True)} for r in rows]


def _stored(indicator_ids, source_ids, years, wanted=None) -> dict[tuple, tuple]:
    """Stored observations of these indicators, sources and years: fact key -> (id, *COMPARED_FIELDS, version).

    One values query, no model instances; with ``wanted`` only those fact keys.
    """
    if not (indicator_ids and source_ids and years):
        return {}
    qs = Observation.objects.filter(
        indicator_id__in=indicator_ids, source_id__in=source_ids, year__in=years
    ).values_list(
        "indicator_id", "source_id", "year", "period", "since", "member_ids", "id", *COMPARED_FIELDS, "version"
    )
    found = {}
    for r in qs.iterator(chunk_size=10_000):
        key = (r[0], r[1], r[2], r[3], r[4], tuple(r[5]))
        if wanted is None or key in wanted:
            found[key] = r[6:]
    return found


def existing_facts(keys) -> dict[tuple, tuple]:
    """The stored observations with these fact keys: key -> (id, *COMPARED_FIELDS, version)."""
    wanted = keys if isinstance(keys, set | dict) else set(keys)
    return _stored({k[0] for k in wanted}, {k[1] for k in wanted}, {k[2] for k in wanted}, wanted)


def _existing_restatements(keys) -> dict[int, list[dict]]:
    """Restatements of the stored observations of these facts: observation id -> values, in their order."""
    indicator_ids = {k[0] for k in keys}
    source_ids = {k[1] for k in keys}
    years = {k[2] for k in keys}
    if not indicator_ids:
        return {}
    qs = (
        Restatement.objects.filter(
            observation__indicator_id__in=indicator_ids,
            observation__source_id__in=source_ids,
            observation__year__in=years,
        )
        .order_by("observation_id", "id")
        .values_list("observation_id", *RESTATEMENT_FIELDS)
    )
    found: dict[int, list[dict]] = {}
    for r in qs.iterator(chunk_size=10_000):
        found.setdefault(r[0], []).append(dict(zip(RESTATEMENT_FIELDS, r[1:], strict=True)))
    return found


def _same(a, b) -> bool:
    if isinstance(a, Decimal) or isinstance(b, Decimal):
        return (a is None and b is None) or (a is not None and b is not None and Decimal(a) == Decimal(b))
    return a == b


@dataclass
class ImportPlan:
    result: ImportResult
    to_create: list[ValidRow] = field(default_factory=list)
    new_restatements: dict[tuple, list[dict]] = field(default_factory=dict)  # fact key -> restatement values
    to_update: list[tuple[int, ValidRow]] = field(default_factory=list)  # (observation id, row)
    versions: dict[int, int] = field(default_factory=dict)  # observation id -> the version the plan compared
    restatement_writes: dict = field(default_factory=dict)
    errors: list[RowError] = field(default_factory=list)


def last_change_channels(observation_ids) -> dict[int, str | None]:
    """Through which channel (fixtures, admin, graphql, cli...) each observation was last changed.

    Read from its history (the pghistory context of its latest event); None where unknown.
    """
    from django.apps import apps

    events = apps.get_model("stats", "ObservationEvent").objects
    return dict(
        events.filter(pgh_obj_id__in=list(observation_ids))
        .order_by("pgh_obj_id", "-pgh_id")
        .distinct("pgh_obj_id")
        .values_list("pgh_obj_id", "pgh_context__metadata__channel")
    )


def _keeping_stored(row: ValidRow, stored: tuple) -> ValidRow:
    """The row with the stored values of the optional fields its file left empty."""
    values = list(row.values)
    for name, before in zip(COMPARED_FIELDS, stored, strict=True):
        if name in row.unset:
            values[FIELD_INDEX[name]] = before
    return row.replaced(tuple(values))


def plan_import(
    primaries: list[ValidRow],
    restated: dict,
    allow_changes: bool,
    result: ImportResult,
    keep_channel: str | None = None,
) -> ImportPlan:
    """What the import would do against the data as it is now: new, changed, unchanged, conflicts.

    With ``keep_channel``, a stored figure last changed through another channel (a staff
    correction) is not changed: it is listed in ``result.kept``.

    Optional fields a row leaves empty (``ObservationRow.unset``) keep their stored values, so
    re-uploading the same figures without retyping a table title or a note changes nothing.
    """
    plan = ImportPlan(result)
    result.valid_rows = []
    plan.to_create = result.new_rows
    indicator_ids, source_ids, years = set(), set(), set()
    for row in primaries:
        indicator_ids.add(row.indicator_id)
        source_ids.add(row.source_id)
        years.add(row.values[0])
    # Keyed by what is stored (none for a new file), not by every imported row.
    existing = _stored(indicator_ids, source_ids, years)
    current = _existing_restatements(existing) if existing else {}
    for row in primaries:
        key = row.key
        extra = restated.get(key)
        wanted_restatements = _restatement_values(extra) if extra else []
        result.restatements += len(wanted_restatements)
        obs = existing.get(key)
        if obs is None:
            result.new += 1
            result.new_rows.append(row)
            result.valid_rows.append(row)
            if wanted_restatements:
                plan.new_restatements[key] = wanted_restatements
            continue
        observation_id, before_values = obs[0], obs[1:-1]
        if row.unset:
            row = _keeping_stored(row, before_values)
        result.valid_rows.append(row)
        values = row.values
        after_values = tuple(values[i] for i in COMPARED_INDEX)
        if before_values == after_values:
            differs = []
        else:
            differs = [
                name for name, b, a in zip(COMPARED_FIELDS, before_values, after_values, strict=True) if not _same(b, a)
            ]
        current_restatements = current.get(observation_id, [])
        if not differs and current_restatements == wanted_restatements:
            result.unchanged += 1
            continue
        before = dict(zip(COMPARED_FIELDS, before_values, strict=True))
        if not allow_changes:
            after = row.fields
            differences = (
                ", ".join(f"{k} {printed(before[k])} → {printed(after[k])}" for k in differs) or "restatements"
            )
            message = (
                f"conflicts with existing observation #{observation_id} ({differences}); "
                "give a reason to change existing data"
            )
            plan.errors.append(RowError(row.row, None, message))
            continue
        result.changed += 1
        change = Change(observation_id, row.row, before, row.fields, row.indicator_id, row.source_id,
                        values[0], row.member_ids)  # fmt: skip
        result.changes.append(change)
        plan.to_update.append((observation_id, row))
        plan.versions[observation_id] = obs[-1]
        if current_restatements != wanted_restatements:
            plan.restatement_writes[observation_id] = wanted_restatements
    if keep_channel and plan.to_update:
        _keep_others_changes(plan, keep_channel)
    return plan


def _keep_others_changes(plan: ImportPlan, channel: str) -> None:
    channels = last_change_channels(oid for oid, _ in plan.to_update)
    kept = {oid for oid, _ in plan.to_update if channels.get(oid) != channel}
    if not kept:
        return
    result = plan.result
    result.kept = [c for c in result.changes if c.observation_id in kept]
    result.changes = [c for c in result.changes if c.observation_id not in kept]
    result.changed -= len(result.kept)
    plan.to_update = [(oid, row) for oid, row in plan.to_update if oid not in kept]
    for oid in kept:
        plan.restatement_writes.pop(oid, None)
