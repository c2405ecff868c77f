"""Downloads: each page's figures as CSV, and the whole warehouse as CSV, XLSX, JSON and a
Frictionless Data Package (``datapackage.json`` describing the tables and their fields)."""

from __future__ import annotations

import threading

import tablib
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.urls import reverse
from django.views.decorators.http import require_safe

from stats import models
from stats.explorer.views import catalog, found
from stats.exports import escape_formula, facts_dataset
from stats.lookups import CatalogLookup

FORMATS = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "json": "application/json",
}
# Frictionless types of the facts columns that are not strings.
FACT_TYPES = {
    "observation_id": "integer",
    "year": "integer",
    "since": "integer",
    "as_of": "date",
    "value": "number",
    "corrected_value": "number",
    "preferred": "boolean",
}
FIELD_DESCRIPTIONS = {
    "value": "The printed figure as a number (empty only when the document prints no figure).",
    "value_text": "The figure as printed.",
    "qualifier": "The word printed before it: exact, more_than, nearly...",
    "corrected_value": "The right value where it can be derived; the printed value stays.",
    "flag": "Data-quality problem, if any (docs/data.md).",
    "preferred": "True for the one figure per fact that plain queries return.",
    "quote": "The verbatim sentence or table row the figure was printed in.",
}


def sources_dataset() -> tablib.Dataset:
    headers = ["slug", "title", "kind", "edition", "publisher", "published", "document", "format", "url", "note"]
    data = tablib.Dataset(headers=headers, title="sources")
    for source in models.Source.objects.order_by("edition", "slug"):
        data.append([escape_formula(getattr(source, h)) for h in headers])
    return data


def indicators_dataset() -> tablib.Dataset:
    data = tablib.Dataset(headers=["code", "name", "topic", "unit", "definition"], title="indicators")
    for ind in models.Indicator.objects.with_topic().order_by("topic__order", "order", "code"):
        data.append([escape_formula(v) for v in (ind.code, ind.name, ind.topic.code, ind.unit, ind.definition)])
    return data


TABLES = {"facts": facts_dataset, "sources": sources_dataset, "indicators": indicators_dataset}


class LatestFiles:
    """The whole-warehouse files of the current data version, built once per version per process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stamp = None
        self._files: dict[tuple[str, str], bytes] = {}

    def get(self, name: str, fmt: str) -> bytes:
        stamp = models.DataVersion.stamp()
        with self._lock:
            if stamp != self._stamp:
                self._stamp, self._files = stamp, {}
            if (name, fmt) not in self._files:
                content = TABLES[name]().export(fmt)
                self._files[(name, fmt)] = content.encode() if isinstance(content, str) else content
            return self._files[(name, fmt)]


latest = LatestFiles()


def attachment(content: bytes | str, fmt: str, filename: str) -> HttpResponse:
    response = HttpResponse(content, content_type=FORMATS[fmt])
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@require_safe
def table_file(request: HttpRequest, name: str, fmt: str) -> HttpResponse:
    if name not in TABLES or fmt not in FORMATS:
        raise Http404(f"no download {name}.{fmt}: tables {', '.join(TABLES)}; formats {', '.join(FORMATS)}")
    return attachment(latest.get(name, fmt), fmt, f"ncmec-{name}.{fmt}")


@require_safe
def indicator_csv(request: HttpRequest, code: str) -> HttpResponse:
    ind = found(catalog().indicator, code)
    rows = models.Observation.objects.preferred().filter(indicator=ind)
    return attachment(facts_dataset(rows).export("csv"), "csv", f"{code}.csv")


@require_safe
def source_csv(request: HttpRequest, slug: str) -> HttpResponse:
    source = found(catalog().source, slug)
    return attachment(facts_dataset(source.observations.all()).export("csv"), "csv", f"{slug}.csv")


@require_safe
def figure_csv(request: HttpRequest, pk: int) -> HttpResponse:
    rows = models.Observation.objects.filter(id=pk)
    if not rows.exists():
        raise Http404(f"no figure with id {pk}")
    return attachment(facts_dataset(rows).export("csv"), "csv", f"figure-{pk}.csv")


def field(name: str, lookup: CatalogLookup) -> dict:
    dimension = lookup.dimensions.get(name)
    described = (
        f"Member of the breakdown by {dimension.name.lower()} (empty: not broken down by it)." if dimension else ""
    )
    return {
        "name": name,
        "type": FACT_TYPES.get(name, "string"),
        **(
            {"description": FIELD_DESCRIPTIONS.get(name) or described}
            if FIELD_DESCRIPTIONS.get(name) or described
            else {}
        ),
    }


@require_safe
def datapackage(request: HttpRequest) -> JsonResponse:
    """The Data Package descriptor: the three CSV tables, their fields and how they link."""
    lookup = catalog()
    facts = facts_dataset(models.Observation.objects.none())
    url = lambda name: reverse("explorer:download", args=[name, "csv"]).rsplit("/", 1)[1]  # noqa: E731
    resources = [
        {
            "name": "facts",
            "path": url("facts"),
            "title": "Every figure, one row each, with its document, breakdown, qualifier, flag and quote",
            "profile": "tabular-data-resource",
            "format": "csv",
            "mediatype": "text/csv",
            "encoding": "utf-8",
            "schema": {
                "fields": [field(h, lookup) for h in facts.headers],
                "primaryKey": ["observation_id"],
                "foreignKeys": [
                    {"fields": ["source_slug"], "reference": {"resource": "sources", "fields": ["slug"]}},
                    {"fields": ["indicator_code"], "reference": {"resource": "indicators", "fields": ["code"]}},
                ],
            },
        },
        {
            "name": "sources",
            "path": url("sources"),
            "title": "The documents the figures were printed in",
            "profile": "tabular-data-resource",
            "format": "csv",
            "mediatype": "text/csv",
            "encoding": "utf-8",
            "schema": {
                "fields": [
                    {"name": h, "type": "integer" if h == "edition" else "string"} for h in sources_dataset().headers
                ],
                "primaryKey": ["slug"],
            },
        },
        {
            "name": "indicators",
            "path": url("indicators"),
            "title": "What is counted",
            "profile": "tabular-data-resource",
            "format": "csv",
            "mediatype": "text/csv",
            "encoding": "utf-8",
            "schema": {"fields": [{"name": h, "type": "string"} for h in indicators_dataset().headers],
                       "primaryKey": ["code"]},
        },
    ]  # fmt: skip
    descriptor = {
        "profile": "tabular-data-package",
        "name": "ncmec-statistics",
        "title": "NCMEC statistics warehouse",
        "description": "The figures NCMEC publishes in its impact reports, each as printed with its source.",
        "version": str(models.DataVersion.current()),
        "licenses": [{"name": "other-at", "title": "Figures published by NCMEC; cite the source document"}],
        "resources": resources,
    }
    return JsonResponse(descriptor, json_dumps_params={"indent": 2})
