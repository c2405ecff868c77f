"""The explorer's pages. Every page is complete without JavaScript; charts are added in the
browser from the public GraphQL API (static/explorer/charts.js), the tables stay as their
accessible alternative."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TypeVar

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from stats import models, reads
from stats.explorer.citations import citation
from stats.lookups import CatalogLookup, LookupFailed

MAX_SEARCH_CHARS = 200
STATE = "state"
T = TypeVar("T")
STOP_WORDS = {"a", "an", "and", "by", "for", "in", "of", "per", "the", "to", "year", "years"}


def catalog() -> CatalogLookup:
    return CatalogLookup.cached()


def found(read: Callable[..., T], *args: object) -> T:
    """A read's answer, or a 404 page that says what was not found."""
    try:
        return read(*args)
    except LookupFailed as exc:
        raise Http404(str(exc)) from None


@require_safe
def home(request: HttpRequest) -> HttpResponse:
    lookup = catalog()
    topics = found(reads.headlines, lookup)
    for _, figures in topics:
        for obs in figures:  # "29,568 missing children cases"; names stay: "NCIC entries", "Take It Down"
            first, _, rest = obs.indicator.name.partition(" ")
            plain = first[1:].islower() and (not rest or rest[0].islower())
            obs.headline_name = " ".join(filter(None, [first.lower() if plain else first, rest]))
    indicators = sorted(lookup.indicators.values(), key=lambda i: (i.order, i.code))
    by_topic = {topic.id: [i for i in indicators if i.topic_id == topic.id] for topic, _ in topics}
    return render(
        request,
        "explorer/home.html",
        {"topics": [(topic, figures, by_topic[topic.id]) for topic, figures in topics]},
    )


@require_safe
def search(request: HttpRequest) -> HttpResponse:
    words = request.GET.get("q", "").strip()
    error = ""
    if len(words) > MAX_SEARCH_CHARS:
        error, words = f"The search is {len(words)} characters long; at most {MAX_SEARCH_CHARS} are read.", ""
    # A year among the words ("missing children by state 2024") opens the results at that year.
    found_words = re.findall(r"[\w.]+", words.lower())
    year = next((int(w) for w in found_words if w.isdigit() and len(w) == 4), None)
    terms = " ".join(w for w in found_words if w not in STOP_WORDS and not w.isdigit())
    results = reads.search_indicators(catalog(), terms) if terms else []
    context = {"q": words, "results": results, "error": error, "year": year}
    return render(request, "explorer/search.html", context, status=400 if error else 200)


@require_safe
def indicator(request: HttpRequest, code: str) -> HttpResponse:
    lookup = catalog()
    ind = found(lookup.indicator, code)
    years = reads.indicator_years(lookup, code)
    if not years:
        raise Http404(f"no figures for {code}")
    raw_year = request.GET.get("year", "")[:20]
    year, notice = max(years), ""
    if raw_year.isdigit() and int(raw_year) in years:
        year = int(raw_year)
    elif raw_year:
        notice = f"{ind.name} has no figures for {raw_year!r}; showing {year}."
    series = {
        period.label: points for period in models.Period if (points := reads.series(lookup, code, period=period.value))
    }
    tables = reads.printed_tables(lookup, code, year, years[year])
    state = lookup.dimensions.get(STATE)
    dimensions = {d.id: d for d in lookup.dimensions.values()}
    one_way = [dimensions[dims[0]] for dims in years[year] if len(dims) == 1]
    context = {
        "indicator": ind,
        "notice": notice,
        "years": sorted(years),
        "year": year,
        "series": series,
        "tables": tables,
        "map": state is not None and state in one_way,
        "breakdowns": [d for d in one_way if d != state],
    }
    return render(request, "explorer/indicator.html", context)


@require_safe
def source(request: HttpRequest, slug: str) -> HttpResponse:
    lookup = catalog()
    doc, figures = found(reads.source_figures, lookup, slug)
    for obs in figures:
        obs.breakdown_text = ", ".join(m.label for m in lookup.breakdown(obs.member_ids))
    flagged = [f for f in figures if f.flag or f.corrected_value is not None]
    return render(request, "explorer/source.html", {"source": doc, "figures": figures, "flagged": flagged})


@require_safe
def figure(request: HttpRequest, pk: int) -> HttpResponse:
    lookup = catalog()
    obs = found(reads.figure, lookup, pk)
    permalink = request.build_absolute_uri()
    return render(
        request,
        "explorer/figure.html",
        {"figure": obs, "members": lookup.breakdown(obs.member_ids), "citation": citation(obs, lookup, permalink)},
    )


DOWNLOADS = [("facts", "Every figure"), ("sources", "The documents"), ("indicators", "What is counted")]


@require_safe
def downloads_page(request: HttpRequest) -> HttpResponse:
    return render(request, "explorer/downloads.html", {"tables": DOWNLOADS, "formats": ["csv", "xlsx", "json"]})
