"""How a figure is cited: publisher, document, where in it, the figure, and its permalink."""

from __future__ import annotations

from stats.display import printed_text
from stats.lookups import CatalogLookup
from stats.models import Observation


def printed(obs: Observation) -> str:
    """The figure as the document words it: "more than 21.7 million"."""
    return printed_text(obs.qualifier, obs.value_text)


def citation(obs: Observation, lookup: CatalogLookup, permalink: str) -> str:
    source = obs.source
    where = f'table "{obs.table}"' if obs.table else "text"
    breakdown = ", ".join(m.label for m in lookup.breakdown(obs.member_ids))
    published = source.published or str(source.edition)
    figure = f"{obs.indicator.name}, {obs.year}" + (f", {breakdown}" if breakdown else "") + f": {printed(obs)}"
    return f"{source.publisher}, {source.title} ({published}), {where}. {figure}. {permalink}"
