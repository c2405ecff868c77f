"""Observation pages read as rows of the asked columns, not as model instances.

Building a Django model instance per row (``Model.from_db``: ``__init__`` over every field, the
init signals) was half of a 10,000-row list's time. When every field a query asks of a page's
items is a column or a resolver that reads only columns of the row (``only=`` on the field) -
no relation, no batched loader - the page is read with ``values_list`` of just those columns,
and each row becomes an instance of the GraphQL type itself (strawberry's own way for a resolver
to return an object: the type's ``is_type_of`` accepts it) whose attributes are the columns. Its
indicator and source, when asked for, are the catalog's (by the ids read), as a model page's are.
Any other selection (restatements, history) keeps model instances.

A resolver that reads a column it did not name in ``only=`` gets an AttributeError naming it (never
the GraphQL type's own attribute of the same name, such as the ``flag`` field): add it there.
"""

from __future__ import annotations

import functools

from django.db.models import QuerySet
from strawberry.schema.name_converter import NameConverter

from stats import models
from stats.graphql.pages import fields_below
from stats.graphql.types import Observation
from stats.lookups import CatalogLookup

CATALOG_RELATIONS = ("indicator", "source")  # read as ids, given the catalog's rows


class NotRead:
    """A model field of a row that was not read: an AttributeError naming it, whatever the GraphQL type
    defines under the same name. (A non-data descriptor: a value read is in the row's ``__dict__``.)"""

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, row, owner=None):
        if row is None:
            return self
        raise AttributeError(
            f"Observation.{self.name} was not read for this page: name it in the resolver's only= (stats.graphql.rows)"
        )


class ObservationRow(Observation):
    """An Observation of the GraphQL type whose attributes are the columns read (see NotRead)."""


for _field in models.Observation._meta.concrete_fields:
    for _name in {_field.name, _field.attname}:
        setattr(ObservationRow, _name, NotRead(_name))
ObservationRow.pk = NotRead("pk")


@functools.cache
def _row_reads() -> dict[str, tuple[str, ...]]:
    """The model fields each Observation field reads, by GraphQL name, for the fields a row can answer."""
    name = NameConverter().from_field
    reads = {}
    for field in Observation.__strawberry_definition__.fields:
        resolver = field.base_resolver
        if field.extensions or field.permission_classes:
            continue
        if field.is_relation:
            if field.django_name in CATALOG_RELATIONS:
                reads[name(field)] = (field.django_name,)
        elif resolver is None:
            reads[name(field)] = (field.django_name,)
        elif field.store.only and not getattr(resolver.wrapped_func, "batched", False):
            reads[name(field)] = tuple(field.store.only)
    return reads


def row_columns(asked) -> list[str] | None:
    """The columns the asked item fields read, when rows can answer all of them; None otherwise."""
    return columns_read(asked, _row_reads(), {"id"})


def columns_read(asked, reads: dict[str, tuple[str, ...] | None], always: set[str]) -> list[str] | None:
    """``always`` and the columns the asked item fields read (by ``reads``); None if one is not known."""
    columns = set(always)
    for field in fields_below(asked, "items"):
        if field.name == "__typename":
            continue
        needed = reads.get(field.name)
        if needed is None:
            return None
        columns.update(needed)
    return sorted(columns)


def observation_rows(
    queryset: QuerySet, columns: list[str], start: int, stop: int, lookup: CatalogLookup
) -> list[ObservationRow]:
    """Rows ``start``..``stop`` of ``queryset`` (ordered), each an Observation with just ``columns``."""
    new, cls = object.__new__, ObservationRow
    rows = []
    append = rows.append
    for values in queryset.values_list(*columns)[start:stop]:
        row = new(cls)
        row.__dict__ = dict(zip(columns, values, strict=False))  # values_list: one value per column
        append(row)
    for relation, by_id in (("indicator", lookup.indicators_by_id), ("source", lookup.sources_by_id)):
        if relation in columns:
            for row in rows:  # the id too, as a model instance has it (``indicator_id``)
                key = row.__dict__[f"{relation}_id"] = row.__dict__[relation]
                row.__dict__[relation] = by_id[key]
    return rows
