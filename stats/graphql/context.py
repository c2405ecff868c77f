"""Per-request state shared by resolvers: the catalog, loaded once per request."""

from __future__ import annotations

from strawberry.types import Info

from stats.lookups import CatalogLookup


def catalog(info: Info) -> CatalogLookup:
    """The request's catalog lookup (indicators, sources, dimensions, members, spellings).

    Loaded on first use (4 small queries) so that members of thousands of observations are
    resolved without a query per row.
    """
    request = info.context.request
    lookup = getattr(request, "_stats_catalog", None)
    if lookup is None:
        lookup = CatalogLookup.load()
        request._stats_catalog = lookup
    return lookup
