"""Named reads shared by the GraphQL resolvers, the explorer's pages, the admin and the commands.

Each takes the catalog (``CatalogLookup``) and plain arguments and returns plain data; an unknown
code or an empty answer raises ``LookupFailed`` with a message naming what was asked for, and a
question without a meaningful answer (adding up shares) raises ``Refused`` saying why.
"""

from stats.reads.aggregates import AggregateGroup, Refused, aggregate
from stats.reads.coverage import Breakdown, CoverageEntry, coverage
from stats.reads.figures import (
    figure,
    headlines,
    indicator_years,
    printed_tables,
    search_indicators,
    source_figures,
)
from stats.reads.series import SeriesPoint, own_period, series
from stats.reads.tables import Row, Table, table

__all__ = [
    "AggregateGroup",
    "Breakdown",
    "CoverageEntry",
    "Refused",
    "Row",
    "SeriesPoint",
    "Table",
    "aggregate",
    "coverage",
    "figure",
    "headlines",
    "indicator_years",
    "own_period",
    "printed_tables",
    "search_indicators",
    "series",
    "source_figures",
    "table",
]
