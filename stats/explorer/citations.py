"""How a figure is cited: publisher, document, where in it, the figure, and its permalink."""

from __future__ import annotations

from stats.lookups import CatalogLookup
from stats.models import Observation, Qualifier


def printed(obs: Observation) -> str:
    """The figure as the document words it: "more than 21.7 million"."""
    if obs.qualifier == Qualifier.PLUS:
        return f"{obs.value_text}+"
    if obs.qualifier == Qualifier.EXACT:
        return obs.value_text
    return f"{obs.get_qualifier_display()} {obs.value_text}"


def citation(obs: Observation, lookup: CatalogLookup, permalink: str) -> str:
    source = obs.source
    where = f'table "{obs.table}"' if obs.table else "text"
    breakdown = ", ".join(m.label for m in lookup.breakdown(obs.member_ids))
    published = source.published or str(source.edition)
    figure = f"{obs.indicator.name}, {obs.year}" + (f", {breakdown}" if breakdown else "") + f": {printed(obs)}"
    return f"{source.publisher}, {source.title} ({published}), {where}. {figure}. {permalink}"
