"""Compiled execution of repeated read queries: strawberry's answer without its per-field cost.

Strawberry resolves every field of every object through several layers (an Info object, argument
conversion, extension hooks, awaitable checks): some 10-30 µs a field, paid 100,000 times for a
10,000-observation list. Dashboards send the same few documents over and over, so a document
that strawberry has executed once without errors (it passed parsing, validation and every
limit) is *learnt*; later requests for it run here instead: the root field's own resolver is
called exactly as strawberry calls it, and the result is walked once, each field read by a
getter chosen when the document was learnt, each leaf serialized by the schema's own scalar and
enum types.

Whatever this walk cannot do exactly as strawberry would (a relation that is not loaded, a
resolver returning a queryset, a null where the schema says non-null, any error) makes it give
up, and strawberry executes the request as usual; the answer is the same bytes either way
(tests/graphql/test_compiled.py checks it query by query).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from django.db.models import Manager, Model, QuerySet
from graphql import (
    BooleanValueNode,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLField,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    VariableNode,
    is_leaf_type,
    parse,
)
from graphql.execution.values import get_argument_values, get_variable_values
from strawberry.schema.schema_converter import get_arguments
from strawberry.types import ExecutionResult
from strawberry.types.nodes import convert_selections

# Root fields whose resolvers return plain objects or evaluated lists (never a lazy queryset).
ROOT_FIELDS = {"observations", "table", "series", "aggregate", "coverage", "dataVersion", "source", "indicator"}
MAX_DOCUMENTS = 256


class GiveUp(Exception):  # control flow, not an error
    """This answer needs strawberry's full executor."""


class RequestInfo:
    """What our resolvers read from Info: the context (the request and its catalog) and, for a root
    field, its selections (``selected_fields``, as strawberry builds them)."""

    __slots__ = ("context", "field_nodes", "fragments", "variable_values")

    def __init__(self, context: Any, fragments: dict, variable_values: dict, field_nodes: tuple = ()) -> None:
        self.context = context
        self.fragments = fragments
        self.variable_values = variable_values
        self.field_nodes = field_nodes

    def for_field(self, field_nodes: tuple) -> RequestInfo:
        return RequestInfo(self.context, self.fragments, self.variable_values, field_nodes)

    @property
    def selected_fields(self) -> list:
        return convert_selections(self, self.field_nodes)


class Plan:
    """A learnt document: its operation and fragments."""

    __slots__ = ("fragments", "operation")

    def __init__(self, operation: OperationDefinitionNode, fragments: dict[str, FragmentDefinitionNode]) -> None:
        self.operation = operation
        self.fragments = fragments


class Run:
    """One execution: variables, the context, and object plans computed once per selection."""

    __slots__ = ("executor", "info", "plan", "selections", "variables")

    def __init__(self, executor: CompiledExecutor, plan: Plan, variables: Any, context: Any) -> None:
        self.executor = executor
        self.plan = plan
        self.variables = variables
        self.info = RequestInfo(context, plan.fragments, variables.coerced)
        self.selections: dict[tuple, list] = {}  # (type name, ids of field nodes) -> fields_of

    # -- selections ---------------------------------------------------------------------------
    def included(self, node) -> bool:
        for directive in node.directives or ():
            (argument,) = directive.arguments
            value = argument.value
            flag = value.value if isinstance(value, BooleanValueNode) else self.variables.coerced[value.name.value]
            if (directive.name.value == "skip") == bool(flag):
                return False
        return True

    def collect(self, type_: GraphQLObjectType, selection_set: SelectionSetNode, into: dict) -> None:
        for node in selection_set.selections:
            if not self.included(node):
                continue
            if isinstance(node, FieldNode):
                into.setdefault((node.alias or node.name).value, []).append(node)
            else:
                fragment = node if isinstance(node, InlineFragmentNode) else self.plan.fragments[node.name.value]
                if fragment.type_condition and fragment.type_condition.name.value != type_.name:
                    raise GiveUp
                self.collect(type_, fragment.selection_set, into)

    def fields_of(self, type_: GraphQLObjectType, nodes: tuple[FieldNode, ...]) -> list:
        """(response key, getter, field type, field nodes) of each field selected on ``type_``."""
        key = (type_.name, *map(id, nodes))  # AST nodes hash recursively; the plan keeps them alive
        found = self.selections.get(key)
        if found is None:
            grouped: dict[str, list[FieldNode]] = {}
            for node in nodes:
                self.collect(type_, node.selection_set, grouped)
            found = []
            for response_key, field_nodes in grouped.items():
                name = field_nodes[0].name.value
                if name == "__typename":
                    found.append((response_key, None, type_.name, ()))
                else:
                    field = type_.fields[name]
                    getter = self.executor.getter(type_, name, field)
                    found.append((response_key, getter, field.type, tuple(field_nodes)))
            self.selections[key] = found
        return found

    # -- values ---------------------------------------------------------------------------
    def complete(self, value: Any, type_, nodes: tuple[FieldNode, ...]) -> Any:
        if isinstance(type_, GraphQLNonNull):
            completed = self.complete(value, type_.of_type, nodes)
            if completed is None:
                raise GiveUp  # strawberry reports the error and nulls the parent
            return completed
        if value is None:
            return None
        if isinstance(type_, GraphQLList):
            return self.complete_list(value, type_.of_type, nodes)
        if is_leaf_type(type_):
            return type_.serialize(value)
        return self.complete_object(value, type_, nodes)

    def complete_object(self, value: Any, type_: GraphQLObjectType, nodes: tuple[FieldNode, ...]) -> dict:
        return self.row(value, self.fields_of(type_, nodes))

    def row(self, value: Any, fields: list) -> dict:
        """One object's answer: each selected field read by its getter and completed."""
        out = {}
        for response_key, getter, field_type, field_nodes in fields:
            if getter is None:
                out[response_key] = field_type  # __typename
            else:
                out[response_key] = self.complete(getter(value, self.info), field_type, field_nodes)
        return out

    def complete_list(self, values: Any, item_type, nodes: tuple[FieldNode, ...]) -> list:
        if not isinstance(values, list | tuple):
            raise GiveUp  # a queryset or manager: strawberry-django's optimizer would plan its query
        inner = item_type.of_type if isinstance(item_type, GraphQLNonNull) else item_type
        if isinstance(inner, GraphQLObjectType):
            fields = self.fields_of(inner, nodes)  # once for the whole list
            out = []
            for value in values:
                if value is None:
                    if inner is not item_type:
                        raise GiveUp
                    out.append(None)
                    continue
                out.append(self.row(value, fields))
            return out
        return [self.complete(v, item_type, nodes) for v in values]


class CompiledExecutor:
    """Learns documents strawberry answered cleanly and executes them again without it."""

    def __init__(self, schema) -> None:
        self.schema = schema
        self._plans: OrderedDict[tuple[str, str | None], Plan | None] = OrderedDict()
        self._getters: dict[tuple[str, str], Callable] = {}
        self._lock = threading.Lock()
        self.answered = 0  # requests answered here (for tests and curiosity)

    # -- learning ---------------------------------------------------------------------------
    def plan(self, query: str, operation_name: str | None = None) -> Plan | None:
        return self._plans.get((query, operation_name))

    def learn(self, query: str, operation_name: str | None) -> None:
        """Remember a document strawberry has just executed without errors, if it can run here."""
        key = (query, operation_name)
        if key in self._plans:
            return
        try:
            plan = self._compile(parse(query), operation_name)
        except (GiveUp, KeyError, ValueError):
            plan = None
        with self._lock:
            self._plans[key] = plan
            while len(self._plans) > MAX_DOCUMENTS:
                self._plans.popitem(last=False)

    def _compile(self, document: DocumentNode, operation_name: str | None) -> Plan:
        operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        chosen = [o for o in operations if operation_name is None or (o.name and o.name.value == operation_name)]
        if len(chosen) != 1 or chosen[0].operation != OperationType.QUERY:
            raise GiveUp
        operation = chosen[0]
        fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
        schema = self.schema._schema
        query_type = schema.query_type
        for node in self._fields(operation.selection_set, fragments):
            if node.name.value not in ROOT_FIELDS:
                raise GiveUp
            self._check(query_type.fields[node.name.value], node, fragments, root=True)
        return Plan(operation, fragments)

    def _fields(self, selection_set: SelectionSetNode | None, fragments: dict, seen: frozenset = frozenset()):
        for node in selection_set.selections if selection_set else ():
            for directive in node.directives or ():
                arguments = directive.arguments or ()
                if directive.name.value not in ("skip", "include") or len(arguments) != 1:
                    raise GiveUp
                if not isinstance(arguments[0].value, BooleanValueNode | VariableNode):
                    raise GiveUp
            if isinstance(node, FieldNode):
                yield node
            elif isinstance(node, InlineFragmentNode):
                yield from self._fields(node.selection_set, fragments, seen)
            elif isinstance(node, FragmentSpreadNode):
                if node.name.value in seen:
                    raise GiveUp
                yield from self._fields(fragments[node.name.value].selection_set, fragments, seen | {node.name.value})

    def _check(self, field: GraphQLField, node: FieldNode, fragments: dict, root: bool = False) -> None:
        """Every field below the root takes no arguments and has a plain getter."""
        if not root and (field.args or node.arguments):
            raise GiveUp
        type_ = field.type
        while isinstance(type_, GraphQLNonNull | GraphQLList):
            type_ = type_.of_type
        if is_leaf_type(type_):
            return
        if not isinstance(type_, GraphQLObjectType):
            raise GiveUp  # unions and interfaces: strawberry resolves the runtime type
        for child in self._fields(node.selection_set, fragments):
            if child.name.value == "__typename":
                continue
            child_field = type_.fields[child.name.value]
            self.getter(type_, child.name.value, child_field)
            self._check(child_field, child, fragments)

    def getter(self, type_: GraphQLObjectType, name: str, field: GraphQLField) -> Callable:
        """How to read ``name`` off an object of ``type_``: the attribute, or the field's own resolver."""
        key = (type_.name, name)
        found = self._getters.get(key)
        if found is None:
            found = self._getters[key] = make_getter(field.extensions["strawberry-definition"])
        return found

    # -- running ---------------------------------------------------------------------------
    def execute(
        self, query: str | None, variable_values: dict | None, context: Any, operation_name: str | None
    ) -> ExecutionResult | None:
        """The answer, or None when strawberry must execute this request."""
        plan = self._plans.get((query, operation_name)) if isinstance(query, str) else None
        if plan is None:
            return None
        schema = self.schema._schema
        variables = get_variable_values(schema, plan.operation.variable_definitions or (), variable_values or {})
        if isinstance(variables, list):
            return None  # bad variables: strawberry words the error
        run = Run(self, plan, variables, context)
        query_type = schema.query_type
        data = {}
        try:
            grouped: dict[str, list[FieldNode]] = {}
            run.collect(query_type, plan.operation.selection_set, grouped)
            for response_key, nodes in grouped.items():
                node = nodes[0]
                if node.name.value == "__typename":
                    data[response_key] = query_type.name
                    continue
                field = query_type.fields[node.name.value]
                definition = field.extensions["strawberry-definition"]
                raw = get_argument_values(field, node, variables)
                info = run.info.for_field(tuple(nodes))
                args, kwargs = get_arguments(
                    field=definition, source=None, info=info, kwargs=raw,
                    config=self.schema.config, scalar_registry=self.schema.schema_converter.scalar_registry,
                )  # fmt: skip
                value = definition.get_result(None, info=info, args=args, kwargs=kwargs)
                data[response_key] = run.complete(value, field.type, tuple(nodes))
        except GiveUp:
            with self._lock:
                self._plans[(query, operation_name)] = None  # this document needs strawberry: don't try again
            return None
        except Exception:  # a resolver's error, bad input...: strawberry answers, errors and all
            return None
        self.answered += 1
        return ExecutionResult(data=data, errors=None)


def make_getter(definition) -> Callable:
    resolver = definition.base_resolver
    if resolver is None:
        name = getattr(definition, "django_name", None) or definition.python_name
        if getattr(definition, "is_relation", False):
            return lambda obj, info: loaded_relation(obj, name)
        return lambda obj, info: getattr(obj, name)
    if resolver.is_async or resolver.arguments or getattr(resolver.wrapped_func, "batched", False):
        raise GiveUp  # a batched field finds its siblings by the executor's path (stats.graphql.loaders)
    func = resolver.wrapped_func
    takes_info = resolver.info_parameter is not None
    takes_self = resolver.self_parameter is not None
    if takes_self and takes_info:
        info_name = resolver.info_parameter.name
        return lambda obj, info: lazy_check(func(obj, **{info_name: info}))
    if takes_self:
        return lambda obj, info: lazy_check(func(obj))
    raise GiveUp


def loaded_relation(obj: Any, name: str) -> Any:
    """A relation's value only when it is already loaded (select_related or prefetch): no query here."""
    if not isinstance(obj, Model):
        return getattr(obj, name)
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
