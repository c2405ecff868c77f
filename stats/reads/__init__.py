"""Named reads shared by the GraphQL resolvers and the explorer's pages.

Each takes the catalog (``CatalogLookup``) and plain arguments and returns plain data; an unknown
code or an empty answer raises ``LookupFailed`` with a message naming what was asked for.
"""

from stats.reads.figures import (
    figure,
    headlines,
    indicator_years,
    printed_tables,
    search_indicators,
    source_figures,
)
from stats.reads.series import SeriesPoint, series
from stats.reads.tables import Row, Table, table

__all__ = [
    "Row",
    "SeriesPoint",
    "Table",
    "figure",
    "headlines",
    "indicator_years",
    "printed_tables",
    "search_indicators",
    "series",
    "source_figures",
    "table",
]
