"""Downloads: each page's figures as CSV, and the whole warehouse as CSV, XLSX, JSON and a
Frictionless Data Package (``datapackage.json`` describing the tables and their fields)."""

from __future__ import annotations

import tablib
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.urls import reverse
from django.views.decorators.http import require_safe

from stats import models
from stats.explorer.views import catalog, found
from stats.exports import escape_formula, facts_headers, facts_response
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
    "display_value": "number",
    "preferred": "boolean",
}
FIELD_DESCRIPTIONS = {
    "value": "The printed figure as a number (empty only when the document prints no figure).",
    "value_text": "The figure as printed.",
    "qualifier": "The word printed before it: exact, more_than, nearly...",
    "corrected_value": "The right value where it can be derived; the printed value stays.",
    "display_value": "The figure to show: corrected_value where there is one, else value (as GraphQL's displayValue).",
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


SMALL_TABLES = {"sources": sources_dataset, "indicators": indicators_dataset}
TABLES = ("facts", *SMALL_TABLES)


def attachment(content: bytes | str, fmt: str, filename: str) -> HttpResponse:
    response = HttpResponse(content, content_type=FORMATS[fmt])
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@require_safe
def table_file(request: HttpRequest, name: str, fmt: str) -> HttpResponseBase:
    """A whole table; the facts stream as PostgreSQL reads them (any size in bounded memory)."""
    if name not in TABLES or fmt not in FORMATS:
        raise Http404(f"no download {name}.{fmt}: tables {', '.join(TABLES)}; formats {', '.join(FORMATS)}")
    if name == "facts":
        return facts_response(None, fmt, "ncmec-facts")
    return attachment(SMALL_TABLES[name]().export(fmt), fmt, f"ncmec-{name}.{fmt}")


@require_safe
def indicator_csv(request: HttpRequest, code: str) -> HttpResponseBase:
    ind = found(catalog().indicator, code)
    return facts_response(models.Observation.objects.preferred().filter(indicator=ind), "csv", code)


@require_safe
def source_csv(request: HttpRequest, slug: str) -> HttpResponseBase:
    source = found(catalog().source, slug)
    return facts_response(source.observations.all(), "csv", slug)


@require_safe
def figure_csv(request: HttpRequest, pk: int) -> HttpResponseBase:
    rows = models.Observation.objects.filter(id=pk)
    if not rows.exists():
        raise Http404(f"no figure with id {pk}")
    return facts_response(rows, "csv", f"figure-{pk}")


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
                "fields": [field(h, lookup) for h in facts_headers()],
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
