"""Per-request state shared by resolvers: the data version the view read, and its catalog."""

from __future__ import annotations

from strawberry.types import Info

from stats.lookups import CatalogLookup
from stats.models import DataVersion


def catalog(info: Info) -> CatalogLookup:
    """The catalog (indicators, sources, dimensions, members, spellings) at the request's data version.

    Kept per process and reloaded only after a write, so members of thousands of observations
    are resolved without a query per row, and a plain request costs no catalog query at all.
    """
    request = info.context.request
    lookup = getattr(request, "_stats_catalog", None)
    if lookup is None:
        lookup = request._stats_catalog = CatalogLookup.cached(data_version(info))
    return lookup


def data_version(info: Info) -> tuple[int, str]:
    """The data version stamp the view read for this request (read here when called without the view).

    The same value as the X-Data-Version header and the cache key, and no second query.
    """
    return getattr(info.context.request, "stats_data_version", None) or DataVersion.stamp()
