"""Batched reads below a list: one query for a field of every parent, however many parents there are.

A nested field (a source's observations, an observation's history...) resolved one parent at a time
costs a query per parent. A loader answers the first parent together with all its *siblings*, the
objects the same field is asked of elsewhere in the answer, and keeps the answers for the others.

Why not strawberry's DataLoader: its ``load()`` returns an asyncio future that only an async executor
can wait for, and this schema executes synchronously (the ORM in the request's thread). A synchronous
executor completes one parent's fields before it looks at the next, so a loader cannot wait for the
siblings' keys; it finds the siblings instead:

- the executor registers every list of objects it completes (``BatchingExecutionContext``), and
  the path of the field being resolved (``sources.3.observationPage``) leads to the outermost
  registered list above it; from each item of that list the same path is followed through values
  that are already loaded (a relation the catalog attached, a page's items) to the siblings;
- what a loader returns is registered too (a *cohort*): the items of every source's page are
  siblings of each other, so their history is one query, not one per source.

A field whose path passes through something not loaded (another resolver) batches with the nearest
list instead. Loaders live for one request (on the request, like the catalog), one per field and
arguments.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.contrib.postgres.aggregates import ArrayAgg
from django.db import connection
from django.db.models import F, Model, Window
from django.db.models.functions import RowNumber
from graphql import FieldNode, GraphQLField, SelectionSetNode, get_named_type, is_object_type
from graphql.pyutils import Path
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.types import Info

from stats import models
from stats.graphql import compiled
from stats.graphql.compiled import GiveUp
from stats.graphql.context import catalog

_MISSING = object()


class BatchingExecutionContext(StrawberryGraphQLCoreExecutionContext):
    """Strawberry's executor, registering each list of objects it completes (the loaders' siblings)."""

    def complete_list_value(self, return_type, field_details_list, info, path, result, position_context):
        walked = compiled.walk(self, return_type.of_type, field_details_list, info, result)
        if walked is not None:
            return walked  # every field below is plain: completed in one walk (stats.graphql.compiled)
        if not self.is_async_iterable(result) and is_object_type(get_named_type(return_type)):
            if not isinstance(result, list | tuple):
                result = list(result)  # a queryset or generator: evaluated once, here
            request = getattr(self.context_value, "request", None)
            if request is not None and result:
                request_batches(request).lists[id(path)] = (path, result)
        return super().complete_list_value(return_type, field_details_list, info, path, result, position_context)


class Loader:
    """The values of one field (with its arguments) for parents, by primary key, fetched in batches."""

    def __init__(self, fetch: Callable[[list[int]], dict[int, Any]], missing: Callable[[], Any]) -> None:
        self.fetch = fetch  # keys -> values of the keys that have one
        self.missing = missing  # the value of a key that has none
        self.values: dict[int, Any] = {}

    def load(self, info: Info, parent: Model) -> Any:
        key = parent.pk
        if key not in self.values:
            keys = {getattr(s, "pk", None) for s in siblings(info, parent)} - self.values.keys() - {None}
            keys.add(key)
            found = self.fetch(sorted(keys))
            for k in keys:
                self.values[k] = found[k] if k in found else self.missing()
        return self.values[key]


class RequestBatches:
    """One request's loaders, the lists the executor completed, and the cohorts loaders returned."""

    def __init__(self) -> None:
        self.lists: dict[int, tuple[Path, list]] = {}  # id(list's path) -> (path, items)
        self.cohorts: dict[int, list] = {}  # id(object) -> every object the same fetch returned
        self.loaders: dict[tuple, Loader] = {}
        self.field_names: dict[str, set[str]] | None = None  # response key -> field names, from the document

    def loader(self, key: tuple, fetch: Callable[[list[int]], dict[int, Any]], missing: Callable[[], Any]) -> Loader:
        found = self.loaders.get(key)
        if found is None:
            found = self.loaders[key] = Loader(fetch, missing)
        return found

    def cohort(self, objects: list) -> None:
        for obj in objects:
            self.cohorts[id(obj)] = objects


def request_batches(request) -> RequestBatches:
    found = getattr(request, "_stats_batches", None)
    if found is None:
        found = request._stats_batches = RequestBatches()
    return found


def batches(info: Info) -> RequestBatches:
    """This request's loaders."""
    return request_batches(info.context.request)


def no_query(resolver: Callable) -> Callable:
    """Mark a resolver that reads only its object and the request's catalog (no query): siblings
    are found through it too, e.g. the members of every observation of a page."""
    resolver.no_query = True
    return resolver


def batched(resolver: Callable) -> Callable:
    """Mark a resolver that uses a loader: the list walk (stats.graphql.compiled) leaves its lists to
    graphql-core, whose executor gives the path that finds the siblings."""
    resolver.batched = True
    return resolver


# -- siblings ---------------------------------------------------------------------------------------


def siblings(info: Info, parent: Any) -> list:
    """The objects the field being resolved is asked of at the same place in the answer as ``parent``."""
    path = getattr(info, "path", None)
    if path is None:
        raise GiveUp  # the list walk has no path: graphql-core completes this list
    state = batches(info)
    cohort = state.cohorts.get(id(parent))
    if cohort is not None:
        return cohort
    chain = []
    node = path.prev  # the parent's own place
    while node is not None:
        chain.append(node)
        node = node.prev
    chain.reverse()
    for start, node in enumerate(chain):
        registered = state.lists.get(id(node))
        if registered is None or registered[0] is not node:
            continue
        items = registered[1]
        items = state.cohorts.get(id(items[0]), items)  # a loader's output: the whole fetch
        found = _follow(info, [items], chain[start + 1 :])
        if found is not None:
            return found
    return [parent]


def _follow(info: Info, values: list, steps: list[Path]) -> list | None:
    """Follow ``steps`` (list indexes and fields) from ``values`` through loaded values and catalog reads
    only; None if a step would need a query."""
    for step in steps:
        if isinstance(step.key, int):
            values = [item for value in values if value is not None for item in value]
            continue
        field = _field(info, step)
        definition = field.extensions.get("strawberry-definition") if field else None
        if definition is None:
            return None
        resolver = definition.base_resolver
        if resolver is not None:
            if not getattr(resolver.wrapped_func, "no_query", False):
                return None
            values = [resolver.wrapped_func(value, info) for value in values if value is not None]
            continue
        name = getattr(definition, "django_name", None) or definition.python_name
        read = []
        for value in values:
            if value is not None:
                found = _loaded(value, name)
                if found is _MISSING:
                    return None
                read.append(found)
        values = read
    return [value for value in values if value is not None]


def _field(info: Info, step: Path) -> GraphQLField | None:
    """The field a path's response key stands for: its name, or the one field of that type it aliases."""
    fields = info.schema._schema.type_map[step.typename].fields
    state = batches(info)
    if state.field_names is None:
        state.field_names = defaultdict(set)
        raw = info._raw_info
        for definition in [raw.operation, *raw.fragments.values()]:
            _collect_names(definition.selection_set, state.field_names)
    names = [name for name in state.field_names.get(step.key, ()) if name in fields]
    return fields[names[0]] if len(names) == 1 else None  # a key that names two fields: no siblings


def _collect_names(selection_set: SelectionSetNode | None, into: dict[str, set[str]]) -> None:
    for node in selection_set.selections if selection_set else ():
        if isinstance(node, FieldNode):
            into[(node.alias or node.name).value].add(node.name.value)
        _collect_names(getattr(node, "selection_set", None), into)


def _loaded(obj: Any, name: str) -> Any:
    if not isinstance(obj, Model):
        return getattr(obj, name, _MISSING)
    if name in obj._state.fields_cache:
        return obj._state.fields_cache[name]
    prefetched = getattr(obj, "_prefetched_objects_cache", {})
    return list(prefetched[name]) if name in prefetched else _MISSING


# -- fetches ----------------------------------------------------------------------------------------


@dataclass
class Page:
    """One parent's page of observations (what a loader keeps before it becomes an ObservationPage)."""

    items: list
    has_next: bool
    total: int


# How each kind of parent holds its observations: (parent column, join, condition, order within one parent).
PARENTS = {
    "source": ("o.source_id", "", "o.source_id = ANY(%(keys)s)", "i.code, o.year, o.member_ids, s.edition, o.id"),
    "indicator": ("o.indicator_id", "", "o.indicator_id = ANY(%(keys)s)", "o.year, o.member_ids, s.edition, o.id"),
    "member": (
        "p.member_id",
        "CROSS JOIN LATERAL unnest(o.member_ids) AS p(member_id)",
        "o.member_ids && %(keys)s::bigint[] AND p.member_id = ANY(%(keys)s)",
        "i.code, o.year, o.id",
    ),
}
_SKIPPED_COLUMNS = {"created_at", "updated_at"}  # no reader shows them (as without_timestamps())


def observation_pages(
    info: Info,
    parent: str,
    keys: list[int],
    *,
    offset: int,
    limit: int,
    year: int | None,
    preferred: bool,
    items: bool,
    total: bool,
    restatements: bool,
) -> dict[int, Page]:
    """A page of observations for each parent, in one query whatever the number of parents
    (row_number() over each parent's observations), their total in one more, and restatements in one."""
    column, join, condition, order = PARENTS[parent]
    where = (
        [condition] + (["o.is_preferred"] if preferred else []) + (["o.year = %(year)s"] if year is not None else [])
    )
    params = {"keys": keys, "year": year, "first": offset, "last": offset + limit + 1}
    meta = models.Observation._meta
    tables = {
        "o": meta.db_table,
        "i": models.Indicator._meta.db_table,
        "s": models.Source._meta.db_table,
    }
    pages = {key: Page(items=[], has_next=False, total=0) for key in keys}
    if items:
        columns = ", ".join(f"o.{f.column}" for f in meta.concrete_fields if f.name not in _SKIPPED_COLUMNS)
        rows = models.Observation.objects.raw(
            f"""
            SELECT {columns}, ranked.parent AS page_parent, ranked.rank AS page_rank
            FROM {tables["o"]} o JOIN (
              SELECT o.id, {column} AS parent, row_number() OVER (PARTITION BY {column} ORDER BY {order}) AS rank
              FROM {tables["o"]} o {join}
              JOIN {tables["i"]} i ON i.id = o.indicator_id JOIN {tables["s"]} s ON s.id = o.source_id
              WHERE {" AND ".join(where)}
            ) ranked ON ranked.id = o.id
            WHERE ranked.rank > %(first)s AND ranked.rank <= %(last)s
            ORDER BY ranked.parent, ranked.rank
            """,
            params,
        )
        fetched = []
        for obs in rows:
            page = pages[obs.page_parent]
            if len(page.items) == limit:
                page.has_next = True  # the one row past the page
            else:
                page.items.append(obs)
                fetched.append(obs)
        catalog(info).attach(fetched, restatements=restatements)
        batches(info).cohort(fetched)
    if total:
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT {column}, count(*) FROM {tables['o']} o {join} WHERE {' AND '.join(where)} GROUP BY 1",
                params,
            )
            for key, count in cursor.fetchall():
                pages[key].total = count
    return pages


def history(keys: list[int], *, offset: int, limit: int, identities: bool) -> dict[int, list]:
    """Each observation's audit events, oldest first, one page each, in one query."""
    events = models.Observation.events.field.model.objects.filter(pgh_obj_id__in=keys)
    if identities:
        events = events.select_related("pgh_context")
    ranked = (
        events.annotate(rank=Window(RowNumber(), partition_by=F("pgh_obj_id"), order_by=F("pgh_id").asc()))
        .filter(rank__gt=offset, rank__lte=offset + limit)
        .order_by("pgh_obj_id", "pgh_id")
    )
    found = defaultdict(list)
    for event in ranked:
        found[event.pgh_obj_id].append(event)
    return found


def years(keys: list[int]) -> dict[int, list[int]]:
    """The years each indicator has observations of, in one query."""
    rows = (
        models.Observation.objects.filter(indicator_id__in=keys)
        .values("indicator_id")
        .annotate(years=ArrayAgg("year", distinct=True, order_by="year"))
        .order_by()
    )
    return {row["indicator_id"]: row["years"] for row in rows}


def aliases(keys: list[int]) -> dict[int, list[str]]:
    """Every spelling of each member, sorted, in one query."""
    found = defaultdict(list)
    for member_id, alias in models.MemberAlias.objects.filter(member_id__in=keys).values_list("member_id", "alias"):
        found[member_id].append(alias)
    return {key: sorted(spellings) for key, spellings in found.items()}
