"""The whole warehouse as one flat table: the open-data download and `manage.py export_facts`."""

from __future__ import annotations

import tablib

from stats.lookups import CatalogLookup
from stats.models import Observation
from stats.printed import format_decimal

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def escape_formula(value):
    """Text that a spreadsheet would run as a formula is prefixed with a quote."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def facts_dataset(queryset=None, *, safe_for_spreadsheets: bool = True) -> tablib.Dataset:
    """One row per observation, one column per dimension holding the member's label."""
    lookup = CatalogLookup.load()
    dimensions = sorted(lookup.dimensions.values(), key=lambda d: (d.order, d.code))
    headers = [
        "observation_id",
        "source_document",
        "source_slug",
        "source_title",
        "year",
        "period",
        "since",
        "as_of",
        "topic",
        "indicator_code",
        "indicator_name",
        "unit",
        *[d.code for d in dimensions],
        "value",
        "value_text",
        "qualifier",
        "corrected_value",
        "correction_reason",
        "flag",
        "note",
        "preferred",
        "table",
        "quote",
        "also_printed_as",
    ]
    data = tablib.Dataset(headers=headers, title="facts")
    queryset = queryset if queryset is not None else Observation.objects.all()
    queryset = queryset.select_related("indicator__topic", "source").prefetch_related("restatements")
    for obs in queryset.order_by("source__edition", "source__slug", "indicator__code", "year", "id").iterator(
        chunk_size=2000
    ):
        by_dimension = {lookup.members_by_id[i].dimension.code: lookup.members_by_id[i].label for i in obs.member_ids}
        also = "; ".join(f"{r.value_text} ({r.get_qualifier_display()})" for r in obs.restatements.all())
        row = [
            obs.id,
            obs.source.document,
            obs.source.slug,
            obs.source.title,
            obs.year,
            obs.period,
            obs.since,
            obs.as_of.isoformat() if obs.as_of else None,
            obs.indicator.topic.code,
            obs.indicator.code,
            obs.indicator.name,
            obs.indicator.unit,
            *[by_dimension.get(d.code, "") for d in dimensions],
            format_decimal(obs.value),
            obs.value_text,
            obs.qualifier,
            format_decimal(obs.corrected_value),
            obs.correction_reason,
            obs.flag,
            obs.note,
            obs.is_preferred,
            obs.table,
            obs.quote,
            also,
        ]
        data.append([escape_formula(v) for v in row] if safe_for_spreadsheets else row)
    return data
