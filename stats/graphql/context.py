"""Per-request state shared by resolvers: the catalog of the request's data version."""

from __future__ import annotations

from strawberry.types import Info

from stats.lookups import CatalogLookup


def catalog(info: Info) -> CatalogLookup:
    """The catalog (indicators, sources, dimensions, members, spellings) at the request's data version.

    Kept per process and reloaded only after a write, so members of thousands of observations
    are resolved without a query per row, and a plain request costs no catalog query at all.
    """
    request = info.context.request
    lookup = getattr(request, "_stats_catalog", None)
    if lookup is None:
        lookup = request._stats_catalog = CatalogLookup.cached(getattr(request, "stats_data_version", None))
    return lookup
