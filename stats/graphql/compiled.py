"""Lists of plain objects completed in one walk, inside strawberry's own execution.

Strawberry and graphql-core complete every field of every object through several layers (an
Info object, argument conversion, the field-extension chain, awaitable checks): some 10-30 µs a
field, paid 20,000 times for a 10,000-observation list of two fields. Most list fields of this
schema are plain: columns read off the object and small resolvers of the object alone.

``BatchingExecutionContext`` (stats.graphql.loaders), strawberry's executor for this schema, hands
each list it completes to ``walk``. The walk completes the whole list itself when every field
selected below it, at any depth, is plain:

- no field extensions and no permission classes (strawberry runs those per field: the walk never
  learns a selection that touches one), no arguments;
- a column (read with the field's own ``get_result``, as strawberry reads a basic field), a loaded
  relation, or a synchronous resolver of the object (and Info) that runs no batched loader;
- and the schema's extensions that wrap every field's resolution (``resolve``) are only
  strawberry-django's optimizer, which changes nothing but querysets and managers, values on
  which the walk gives up. Any other such extension and nothing is walked.

Everything else is strawberry's: the operation, parsing, validation and execution hooks of every
schema extension run as usual around the walk (it happens inside ``execute``), root fields and
every non-list value are resolved by graphql-core with the whole middleware and extension chain.
Whatever the walk cannot complete exactly as graphql-core would (a null where the schema says
non-null, a relation not loaded, a queryset, any exception) makes it give up on that list, and
graphql-core completes it from the start: the answer is the same bytes either way
(tests/graphql/test_compiled.py compares them query by query, with the walk on and off).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db.models import Manager, Model, QuerySet
from graphql import GraphQLList, GraphQLNonNull, GraphQLObjectType, Undefined, is_leaf_type
from strawberry.types.cast import get_strawberry_type_cast
from strawberry_django.optimizer import DjangoOptimizerExtension

# Schema extensions whose ``resolve`` hook passes every value other than a queryset or manager through.
PASS_THROUGH_RESOLVE = (DjangoOptimizerExtension,)


MEMO_PROBE = 64  # objects completed before deciding whether a completer's objects repeat


class GiveUp(Exception):  # control flow, not an error
    """graphql-core completes this value instead."""


class WalkInfo:
    """What the walked resolvers read from Info: the request context. No path: a resolver that
    looks for its siblings by the executor's path (stats.graphql.loaders) makes the walk give up."""

    __slots__ = ("context", "variable_values")

    def __init__(self, context: Any, variable_values: Any) -> None:
        self.context = context
        self.variable_values = variable_values


class Walked:
    """Counts for tests: lists completed by the walk, and lists it gave back to graphql-core."""

    lists = 0
    given_back = 0


def enabled(executor) -> bool:
    """Whether this execution may walk: the setting, and only pass-through ``resolve`` hooks."""
    found = getattr(executor, "_stats_walk", None)
    if found is None:
        manager = executor.middleware_manager
        middlewares = manager.middlewares if manager else ()
        found = settings.GRAPHQL_COMPILED and all(isinstance(m, PASS_THROUGH_RESOLVE) for m in middlewares)
        executor._stats_walk = found
        executor._stats_plans = {}
    return found


def walk(executor, item_type, field_details_list, info, result) -> list | None:
    """The completed list, or None when graphql-core must complete it."""
    if not isinstance(result, list | tuple) or not enabled(executor):
        return None
    inner = item_type.of_type if isinstance(item_type, GraphQLNonNull) else item_type
    if not isinstance(inner, GraphQLObjectType):
        return None
    try:
        run = Run(executor, WalkInfo(executor.context_value, info.variable_values))
        out = run.completer(GraphQLList(item_type), field_details_list)(result)
    except Exception:  # GiveUp, or a resolver's error: graphql-core reports it as strawberry would
        Walked.given_back += 1
        return None
    Walked.lists += 1
    return out


class Run:
    """One list's walk: the executor (its field collection and plans) and the Info resolvers get."""

    __slots__ = ("executor", "info", "plans")

    def __init__(self, executor, info: WalkInfo) -> None:
        self.executor = executor
        self.info = info
        self.plans: dict = executor._stats_plans

    def fields_of(self, type_: GraphQLObjectType, field_details_list) -> list:
        """(response key, getter, completer) of each field selected on ``type_``, collected by
        graphql-core (fragments, @skip and @include with this request's variables)."""
        key = (type_.name, id(field_details_list))
        found = self.plans.get(key)
        if found is not None:
            return found[1]
        grouped, new_defer_usages, _ = self.executor.collect_subfields(type_, field_details_list)
        if new_defer_usages:
            raise GiveUp
        fields = []
        for response_key, details in grouped.items():
            if any(d.defer_usage or d.fragment_variable_values for d in details):
                raise GiveUp
            name = details[0].node.name.value
            if name == "__typename":
                fields.append((response_key, typename(type_.name), same))
                continue
            field = type_.fields[name]
            if field.args or any(d.node.arguments for d in details):
                raise GiveUp
            fields.append((response_key, getter(type_, name, field), self.completer(field.type, details)))
        self.plans[key] = (field_details_list, fields)  # the list kept alive: its id stays its own
        return fields

    def completer(self, type_, details) -> Callable[[Any], Any]:
        """How to complete a value of ``type_`` as graphql-core would (GiveUp where it would report an error)."""
        if isinstance(type_, GraphQLNonNull) and is_leaf_type(type_.of_type):
            coerce = type_.of_type.coerce_output_value

            def non_null_leaf(value: Any) -> Any:
                if value is None:
                    raise GiveUp  # graphql-core reports the error and nulls the parent
                coerced = coerce(value)
                if coerced is None or coerced is Undefined:
                    raise GiveUp
                return coerced

            return non_null_leaf
        if isinstance(type_, GraphQLNonNull):
            inner = self.completer(type_.of_type, details)

            def non_null(value: Any) -> Any:
                completed = inner(value)
                if completed is None:
                    raise GiveUp  # graphql-core reports the error and nulls the parent
                return completed

            return non_null
        if isinstance(type_, GraphQLList):
            item = self.completer(type_.of_type, details)

            def listed(value: Any) -> list | None:
                if value is None:
                    return None
                if not isinstance(value, list | tuple):
                    raise GiveUp  # a queryset or manager: strawberry-django's optimizer would plan its query
                return [item(v) for v in value]

            return listed
        if is_leaf_type(type_):
            coerce = type_.coerce_output_value

            def leaf(value: Any) -> Any:
                if value is None:
                    return None
                coerced = coerce(value)
                if coerced is None or coerced is Undefined:
                    raise GiveUp
                return coerced

            return leaf
        if isinstance(type_, GraphQLObjectType):
            fields = self.fields_of(type_, details)
            row = self.row
            check = type_check(type_)
            # The same object reached again (a catalog member under thousands of observations) has the
            # same answer: its fields read the object alone. Kept with the object, so its id stays its own;
            # not kept where the first objects were all different (a page's own rows).
            done: dict[int, tuple[Any, dict]] = {}
            reused = [False]

            def obj(value: Any) -> dict | None:
                if value is None:
                    return None
                found = done.get(id(value))
                if found is not None and found[0] is value:
                    reused[0] = True
                    return found[1]
                if check is not None and not check(value, self.info):
                    raise GiveUp  # graphql-core words the error
                completed = row(value, fields)
                if reused[0] or len(done) < MEMO_PROBE:
                    done[id(value)] = (value, completed)
                return completed

            return obj
        raise GiveUp  # unions and interfaces: graphql-core resolves the runtime type

    def row(self, value: Any, fields: list) -> dict:
        """One object's answer: each selected field read by its getter and completed."""
        info = self.info
        return {key: complete(get(value, info)) for key, get, complete in fields}


def type_check(type_: GraphQLObjectType) -> Callable | None:
    """The type's ``is_type_of``; strawberry-django's answered once per class of object.

    strawberry-django's check reads an object's ``strawberry.cast`` mark, else whether it is an
    instance of the type's class or model (a parent type's check first, if there is one): with no
    parent check and no mark, the answer depends on the object's class alone.
    """
    check = type_.is_type_of
    definition = type_.extensions.get("strawberry-definition") if type_.extensions else None
    origin = getattr(definition, "origin", None)
    if (
        check is None
        or origin is None
        or getattr(check, "__module__", "") != "strawberry_django.type"
        or getattr(check, "__qualname__", "") != "_process_type.<locals>.is_type_of"
        or getattr(super(origin, origin), "is_type_of", None) is not None
    ):
        return check
    answers: dict[type, bool] = {}

    def by_class(value: Any, info: Any) -> bool:
        if get_strawberry_type_cast(value) is not None:
            return check(value, info)
        found = answers.get(type(value))
        if found is None:
            found = answers[type(value)] = check(value, info)
        return found

    return by_class


def same(value: Any) -> Any:
    return value


def typename(name: str) -> Callable:
    return lambda obj, info: name


_getters: dict[tuple[str, str], Callable] = {}


def getter(type_: GraphQLObjectType, name: str, field) -> Callable:
    """How to read ``name`` off an object of ``type_``, decided once per process; GiveUp if not plain."""
    key = (type_.name, name)
    found = _getters.get(key)
    if found is None:
        definition = field.extensions.get("strawberry-definition")
        found = _getters[key] = make_getter(definition) if definition is not None else None
    if found is None:
        raise GiveUp
    return found


def make_getter(definition) -> Callable | None:
    """A column as strawberry reads a basic field, a loaded relation, or the resolver; None if not plain."""
    if definition.extensions or definition.permission_classes:
        return None  # strawberry runs these for every value: never walked
    resolver = definition.base_resolver
    if resolver is None:
        if getattr(definition, "is_relation", False):
            name = getattr(definition, "django_name", None) or definition.python_name
            return lambda obj, info: loaded_relation(obj, name)
        if not definition.is_basic_field:
            return None
        get_result = definition.get_result
        return lambda obj, info: get_result(obj, info=None, args=[], kwargs={})  # as strawberry's basic field
    if resolver.is_async or resolver.arguments or getattr(resolver.wrapped_func, "batched", False):
        return None  # a batched field finds its siblings by the executor's path (stats.graphql.loaders)
    func = resolver.wrapped_func
    takes_info = resolver.info_parameter is not None
    takes_self = resolver.self_parameter is not None
    if takes_self and takes_info:
        info_name = resolver.info_parameter.name
        return lambda obj, info: lazy_check(func(obj, **{info_name: info}))
    if takes_self:
        return lambda obj, info: lazy_check(func(obj))
    return None


def loaded_relation(obj: Any, name: str) -> Any:
    """A relation's value only when it is already loaded (select_related or prefetch): no query here."""
    if not isinstance(obj, Model):
        return lazy_check(getattr(obj, name))
    if name in obj._state.fields_cache:
        return obj._state.fields_cache[name]
    prefetched = getattr(obj, "_prefetched_objects_cache", {})
    if name in prefetched:
        return list(prefetched[name])
    raise GiveUp


def lazy_check(value: Any) -> Any:
    if isinstance(value, Manager | QuerySet):
        raise GiveUp
    return value
