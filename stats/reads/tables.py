"""A report table as printed: one indicator and year, rows × columns, with the printed totals."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from stats import models
from stats.lookups import CatalogLookup, LookupFailed

# What a cell reads from its observation (tuples, no model instance per cell).
CELL_FIELDS = ("id", "value", "value_text", "qualifier", "flag", "corrected_value", "member_ids", "table", "source_id")


@dataclass
class Row:
    member: models.Member | None  # None for the Total row
    cells: list[Any]  # one observation row per column (None where nothing is printed)
    total: Any  # the printed row total (tables with columns only)


@dataclass
class Table:
    indicator: models.Indicator
    year: int
    title: str
    row_dimension: models.Dimension
    column_dimension: models.Dimension | None
    columns: list[models.Member]
    rows: list[Row]
    total_row: Row | None
    sources: list[models.Source]


def table_title(cells: dict[tuple, Any]) -> str:
    """The printed title most of the table's cells come from.

    The body (cells with a row member) decides: a grand total is often printed elsewhere (in running
    text, or in another table), and its title is not this table's. Ties go to the first in order.
    """
    body = Counter(o.table for (r, _), o in cells.items() if r is not None and o.table)
    titles = body or Counter(o.table for o in cells.values() if o.table)
    return min(titles, key=lambda t: (-titles[t], t)) if titles else ""


def table(
    lookup: CatalogLookup,
    indicator: str,
    year: int,
    rows: str,
    columns: str | None = None,
    source: str | None = None,
    fixed: list[int] = (),
    fields: tuple[str, ...] = CELL_FIELDS,
) -> Table:
    """The cells of ``indicator`` in ``year`` broken down by ``rows`` (× ``columns``), within the
    ``fixed`` member ids, from the preferred source or from ``source``; ``fields`` (a superset of
    CELL_FIELDS) are what each cell carries."""
    ind = lookup.indicator(indicator)
    row_dim = lookup.dimension(rows)
    col_dim = lookup.dimension(columns) if columns else None
    fixed_dims = {lookup.members_by_id[i].dimension_id for i in fixed}
    shapes = [[row_dim.id], []] + ([[row_dim.id, col_dim.id], [col_dim.id]] if col_dim else [])
    qs = models.Observation.objects.filter(indicator=ind, year=year, period=models.Period.ANNUAL)
    qs = qs.filter(source=lookup.source(source)) if source else qs.preferred()
    qs = qs.filter(dimension_ids__in=[sorted(s + list(fixed_dims)) for s in shapes]).with_members(fixed)
    cells: dict[tuple, Any] = {}
    for obs in qs.values_list(*fields, named=True):
        ids = [i for i in obs.member_ids if i not in fixed]
        key = (
            next((i for i in ids if lookup.members_by_id[i].dimension_id == row_dim.id), None),
            next((i for i in ids if col_dim and lookup.members_by_id[i].dimension_id == col_dim.id), None),
        )
        cells[key] = obs
    if not any(r is not None for r, _ in cells):
        raise LookupFailed(
            f"no {indicator} figures for {year} broken down by {rows}" + (f" × {columns}" if columns else "")
        )
    by_order = lambda ids: sorted(ids, key=lambda i: (lookup.members_by_id[i].order, i))  # noqa: E731
    row_ids = by_order({r for r, _ in cells if r is not None})
    col_ids = by_order({c for _, c in cells if c is not None})
    member = lambda r: lookup.members_by_id[r] if r is not None else None  # noqa: E731
    if col_dim:
        row = lambda r: Row(member(r), [cells.get((r, c)) for c in col_ids], cells.get((r, None)))  # noqa: E731
        rows_out = [row(r) for r in row_ids]
        total_row = row(None) if any(r is None for r, _ in cells) else None
    else:
        rows_out = [Row(member(r), [cells[(r, None)]], None) for r in row_ids]
        total_row = Row(None, [cells[(None, None)]], None) if (None, None) in cells else None
    sources = {o.source_id: lookup.sources_by_id[o.source_id] for o in cells.values()}
    return Table(
        indicator=ind,
        year=year,
        title=table_title(cells),
        row_dimension=row_dim,
        column_dimension=col_dim,
        columns=[lookup.members_by_id[c] for c in col_ids],
        rows=rows_out,
        total_row=total_row,
        sources=sorted(sources.values(), key=lambda s: s.slug),
    )
