"""Loading the published reports from fixtures/ (format: docs/data.md).

The catalog goes through the catalog upserts, every figure and table cell through
``observations_import``: the same validated write path that staff imports use.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pghistory
import yaml
from django.conf import settings
from django.db import transaction

from stats.models import ImportRecord, Observation, Period
from stats.printed import ValueTextError, parse_number
from stats.services.catalog import catalog_load, source_upsert
from stats.services.errors import ImportFailed, RowError
from stats.services.locking import data_version_at_commit
from stats.services.observations import ImportResult, ObservationRow, observations_import
from stats.services.observations.planning import last_change_channels, printed
from stats.services.tables import CellNote, TableSpec, table_observation_rows

FIXTURES_DIR = Path(settings.BASE_DIR) / "fixtures"
FIXTURES_CHANNEL = "fixtures"  # the history channel of figures loaded from fixtures/
FILE_KEYS = {"source", "tables", "figures", "not_figures"}
SOURCE_KEYS = {
    "slug",
    "title",
    "kind",
    "edition",
    "publisher",
    "published",
    "document",
    "format",
    "url",
    "note",
}
FIGURE_KEYS = {
    "indicator",
    "year",
    "text",
    "quote",
    "qualifier",
    "period",
    "since",
    "as_of",
    "members",
    "value",
    "flag",
    "note",
    "correction",
    "correction_reason",
}
TABLE_KEYS = {
    "title",
    "indicator",
    "year",
    "rows",
    "columns",
    "header",
    "cells",
    "cell_flags",
    "members",
    "period",
    "since",
    "as_of",
    "flag",
    "note",
}


@dataclass
class SourceFile:
    path: Path
    data: dict[str, Any]


@dataclass
class ReportsLoadResult:
    catalog: dict[str, int] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)
    observations: ImportResult | None = None
    missing: list[Observation] = field(default_factory=list)  # stored figures of these sources no longer in fixtures/
    removed: list[Observation] = field(default_factory=list)  # of those, the ones deleted (``remove_missing``)

    @property
    def left_alone(self) -> list[str]:
        """What differs from fixtures/ and was not applied, one line each (``load_reports --strict`` fails on it)."""
        lines = []
        for change in self.observations.kept if self.observations else []:
            differs = [k for k in change.before if printed(change.before[k]) != printed(change.after[k])]
            what = ", ".join(
                f"{k} stored {printed(change.before[k])}, fixtures {printed(change.after[k])}" for k in differs
            )
            lines.append(
                f"observation #{change.observation_id} ({change.row}) was changed by staff since it was loaded; "
                f"kept as it is ({what or 'restatements'})"
            )
        removed = {obs.id for obs in self.removed}
        for obs in self.missing:
            if obs.id not in removed:
                lines.append(
                    f"observation #{obs.id} ({obs.indicator.code} {obs.year}, {obs.source.slug}, "
                    f"{obs.value_text or '—'}) is no longer in fixtures/; kept (--remove-missing removes it"
                    " unless staff changed it)"
                )
        return lines


def _read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ImportFailed([RowError(path.name, None, f"not valid YAML: {exc}")]) from exc


def reports_read(directory: Path = FIXTURES_DIR) -> tuple[dict, list[SourceFile]]:
    """Parse catalog.yaml and sources/*.yaml (no database)."""
    catalog = _read_yaml(directory / "catalog.yaml") or {}
    sources = [SourceFile(p, _read_yaml(p) or {}) for p in sorted((directory / "sources").glob("*.yaml"))]
    return catalog, sources


def _decimal(text: Any, where: str, column: str, errors: list[RowError]) -> Decimal | None:
    if text is None or text == "":
        return None
    try:
        return parse_number(str(text))
    except ValueTextError as exc:
        errors.append(RowError(where, column, str(exc)))
        return None


def _unknown_keys(entry: dict, allowed: set[str], where: str, errors: list[RowError]) -> None:
    for key in sorted(set(entry) - allowed):
        errors.append(RowError(where, key, f"unknown key (allowed: {', '.join(sorted(allowed))})"))


def source_rows(source_file: SourceFile) -> tuple[list[ObservationRow], list[RowError]]:
    """Every figure and table cell of one source file as observation rows."""
    name = source_file.path.name
    data = source_file.data
    slug = (data.get("source") or {}).get("slug", "")
    rows: list[ObservationRow] = []
    errors: list[RowError] = []
    for i, fig in enumerate(data.get("figures") or []):
        where = f"{name} figures[{i}]"
        _unknown_keys(fig, FIGURE_KEYS, where, errors)
        rows.append(
            ObservationRow(
                indicator=str(fig.get("indicator", "")),
                source=slug,
                year=fig.get("year"),
                value_text=str(fig.get("text", "") or ""),
                members={str(k): str(v) for k, v in (fig.get("members") or {}).items()},
                qualifier=fig.get("qualifier", "exact"),
                value=_decimal(fig.get("value"), where, "value", errors),
                period=fig.get("period", Period.ANNUAL),
                since=fig.get("since"),
                as_of=fig.get("as_of"),
                quote=str(fig.get("quote", "")),
                flag=fig.get("flag", "") or "",
                note=fig.get("note", "") or "",
                corrected_value=_decimal(fig.get("correction"), where, "correction", errors),
                correction_reason=fig.get("correction_reason", "") or "",
                row=where,
            )
        )
    for t, table in enumerate(data.get("tables") or []):
        where = f"{name} tables[{t}]"
        _unknown_keys(table, TABLE_KEYS, where, errors)
        columns = table.get("columns")
        cell_notes = {}
        for note in table.get("cell_flags") or []:
            cell_notes[(str(note.get("row", "")), str(note.get("column", "")))] = CellNote(
                flag=note.get("flag", "") or "",
                note=note.get("note", "") or "",
                correction=_decimal(note.get("correction"), where, "correction", errors),
                correction_reason=note.get("correction_reason", "") or "",
            )
        spec = TableSpec(
            source=slug,
            year=table.get("year"),
            rows=str(table.get("rows", "")),
            columns=columns if isinstance(columns, str) else None,
            indicator=table.get("indicator"),
            column_indicators=columns if isinstance(columns, dict) else None,
            title=str(table.get("title", "")),
            members={str(k): str(v) for k, v in (table.get("members") or {}).items()},
            period=table.get("period", Period.ANNUAL),
            since=table.get("since"),
            as_of=table.get("as_of"),
            flag=table.get("flag", "") or "",
            note=table.get("note", "") or "",
            cell_notes=cell_notes,
        )
        body = [line.split("|") for line in str(table.get("cells", "")).strip().splitlines() if line.strip()]
        cells, table_errors = table_observation_rows(
            spec=spec,
            header=[str(h) for h in table.get("header") or []],
            body=body,
            first_row=1,
            location=where,
        )
        rows.extend(cells)
        errors.extend(table_errors)
    return rows, errors


def _missing(result: ReportsLoadResult) -> list[Observation]:
    """Stored figures of the loaded sources that fixtures/ no longer prints."""
    loaded = {row.key for row in result.observations.valid_rows}
    stored = (
        Observation.objects.filter(source__slug__in=result.sources).select_related("indicator", "source").order_by("id")
    )
    return [
        obs
        for obs in stored
        if (obs.indicator_id, obs.source_id, obs.year, obs.period, obs.since, tuple(obs.member_ids)) not in loaded
    ]


def reports_load(
    *, directory: Path = FIXTURES_DIR, user=None, dry_run: bool = False, remove_missing: bool = False
) -> ReportsLoadResult:
    """Load the catalog and every source document's figures, all or nothing; idempotent.

    Figures staff changed since they were loaded (their last change came through another channel
    than the fixtures) are left as they are and listed; figures no longer in fixtures/ are listed,
    and deleted only with ``remove_missing`` (never one staff changed).
    """
    catalog, sources = reports_read(directory)
    result = ReportsLoadResult()
    all_rows: list[ObservationRow] = []
    errors: list[RowError] = []
    digest = hashlib.sha256()
    for source_file in sources:
        digest.update(source_file.path.read_bytes())
        meta = source_file.data.get("source") or {}
        _unknown_keys(source_file.data, FILE_KEYS, source_file.path.name, errors)
        _unknown_keys(meta, SOURCE_KEYS, f"{source_file.path.name} source", errors)
        rows, row_errors = source_rows(source_file)
        all_rows.extend(rows)
        errors.extend(row_errors)
    if errors:
        raise ImportFailed(errors)
    with transaction.atomic():
        data_version_at_commit()  # a long transaction: never hold the version row's lock for all of it
        result.catalog = catalog_load(data=catalog)
        for source_file in sources:
            meta = source_file.data["source"]
            source_upsert(
                **{k: v for k, v in meta.items() if k in SOURCE_KEYS and k != "published"},
                published=str(meta.get("published") or ""),
            )
            result.sources.append(meta["slug"])
        result.observations = observations_import(
            rows=all_rows,
            user=user,
            reason="published reports (fixtures/) loaded",
            channel=FIXTURES_CHANNEL,
            shape=ImportRecord.Shape.REPORTS,
            file_name="fixtures/sources/*.yaml",
            checksum=digest.hexdigest(),
            dry_run=dry_run,
            merge_restatements=True,
            allow_changes=True,
            keep_edits=True,
            confirm_years_outside_edition=True,  # reports print earlier years' figures; reviewed in fixtures/
        )
        result.missing = _missing(result)
        if remove_missing and result.missing:
            channels = last_change_channels(obs.id for obs in result.missing)
            result.removed = [obs for obs in result.missing if channels.get(obs.id) == FIXTURES_CHANNEL]
            with pghistory.context(reason="no longer in the published reports (fixtures/)", channel=FIXTURES_CHANNEL):
                Observation.objects.filter(id__in=[obs.id for obs in result.removed]).delete()
        if dry_run:
            transaction.set_rollback(True)
    return result
