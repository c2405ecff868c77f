"""What an import would do against the stored data: new, changed, unchanged, restatements, conflicts."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from stats.checks import TotalCheck
from stats.models import ImportRecord, Observation, Restatement
from stats.printed import format_decimal
from stats.services.errors import RowError
from stats.services.observations import staging
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

NEW_ROWS_LISTED = 1_000
VALID_ROWS_KEPT = 20_000


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
    new_rows: list[ValidRow] = field(default_factory=list)  # the first NEW_ROWS_LISTED new figures, in file order
    # Every row that will be an observation, as stored, for an import of at most VALID_ROWS_KEPT rows (the
    # published reports' loader compares them with what is stored); empty for a larger one.
    valid_rows: list[ValidRow] = field(default_factory=list)
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


def merge_duplicates(merge: bool) -> tuple[dict, list[RowError]]:
    """Facts given more than once by the staged rows (found by SQL); with ``merge`` the extra printings
    become restatements (and leave the staging table), otherwise each is a duplicate-row error.

    Returns the restatements of each fact printed more than once (fact key -> rows, best first), and
    the errors.
    """
    groups = staging.duplicate_groups()
    if not groups:
        return {}, []
    wanted = [seq for group in groups for seq in group]
    rows = {seq: row for seq, row, _ in staging.staged_rows("s.seq = ANY (%s)", [wanted])}
    restatements, errors, extra = {}, [], []
    for group in groups:
        printings = [rows[seq] for seq in group]
        if not merge:
            first_row = printings[0].row
            for dup in printings[1:]:
                errors.append(
                    RowError(
                        dup.row,
                        None,
                        f"duplicate of row {first_row}: same indicator, source, year, period and breakdown",
                    )
                )
            continue
        # Which printing is the observation: exact, then table, then first (sorted() keeps file order).
        ranked = sorted(zip(group, printings, strict=True), key=lambda pair: _precision_rank(pair[1]))
        restatements[printings[0].key] = [row for _, row in ranked[1:]]
        extra += [seq for seq, _ in ranked[1:]]
    if extra:
        staging.delete(extra)
    return restatements, errors


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


def _existing_restatements() -> dict[int, list[dict]]:
    """Restatements of the stored observations the staged rows match: observation id -> values, in their order."""
    qs = (
        Restatement.objects.extra(where=[f"observation_id IN (SELECT observation_id FROM {staging.MATCHED})"])
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
    new_restatements: dict[tuple, list[dict]] = field(default_factory=dict)  # fact key -> restatement values
    to_update: list[tuple[int, ValidRow]] = field(default_factory=list)  # (observation id, row as it will be)
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


def as_stored(row: ValidRow, stored: tuple | None) -> ValidRow:
    """The row as the import will leave the figure: a stored one keeps what the file left unset."""
    if stored is not None and row.unset:
        return _keeping_stored(row, stored[1:-1])
    return row


def plan_import(
    restated: dict,
    allow_changes: bool,
    result: ImportResult,
    keep_channel: str | None = None,
) -> ImportPlan:
    """What the staged rows would do against the data as it is now: new, changed, unchanged, conflicts.

    Counted in SQL; only the rows that match a stored figure are read back and compared here, and
    only the changed ones are kept. With ``keep_channel``, a stored figure last changed through
    another channel (a staff correction) is not changed: it is listed in ``result.kept``.

    Optional fields a row leaves empty (``ObservationRow.unset``) keep their stored values, so
    re-uploading the same figures without retyping a table title or a note changes nothing.
    """
    plan = ImportPlan(result)
    matched = staging.match_stored()
    total = staging.count_rows()
    result.new = total - matched
    result.restatements = sum(len(rows) for rows in restated.values())
    result.new_rows = [row for _, row, _ in staging.staged_rows("m.seq IS NULL", limit=NEW_ROWS_LISTED)]
    if total <= VALID_ROWS_KEPT:
        result.valid_rows = [as_stored(row, stored) for _, row, stored in staging.staged_rows()]
    matched_keys = set()
    current = _existing_restatements() if matched else {}
    for _, row, stored in staging.staged_rows("m.seq IS NOT NULL") if matched else ():
        key = row.key
        matched_keys.add(key)
        extra = restated.get(key)
        wanted_restatements = _restatement_values(extra) if extra else []
        observation_id, before_values = stored[0], stored[1:-1]
        row = as_stored(row, stored)
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
        plan.versions[observation_id] = stored[-1]
        if current_restatements != wanted_restatements:
            plan.restatement_writes[observation_id] = wanted_restatements
    plan.new_restatements = {
        key: _restatement_values(rows) for key, rows in restated.items() if key not in matched_keys
    }
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
