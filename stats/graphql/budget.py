"""The items budget: how many list items one request may ask for, estimated before it runs.

The document limits (stats.graphql.limits) bound its size, not its answer: thirty aliases of a
10,000-row page, each with every figure's history, are a small document and minutes of work.
As GitHub's GraphQL API does with its node limit, the answer's size is estimated from the page
sizes the request asks for (its `limit` arguments, variables included, or their defaults) and
multiplied down the nesting: `observations(limit: 1000) { items { history { at } } }` may
return 1,000 figures and 1,000 × 100 events. Lists without a `limit` argument count one item per
parent (an observation's members, a catalog list) except the capped deprecated lists, which
count their cap. A request over GRAPHQL_MAX_ITEMS is refused before any work, saying how to ask
for less. Fragments are expanded: the document limits already bound the expanded field count.
"""

from __future__ import annotations

from django.conf import settings
from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLList,
    GraphQLObjectType,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
    get_named_type,
    get_nullable_type,
    value_from_ast,
)

# Deprecated unpaged lists, capped by the server (stats.graphql.types.LIST_CAP).
CAPPED_LISTS = {("Source", "observations"), ("Indicator", "observations"), ("Member", "observations")}


class OverBudget(Exception):
    """The request could return more list items than GRAPHQL_MAX_ITEMS."""


def estimated_items(document: DocumentNode, variables: dict | None, operation_name: str | None) -> int:
    """The most list items the operation to run could return (0 for one the executor would not run)."""
    from stats.graphql.schema import schema  # the schema imports the view's modules: resolved at run time
    from stats.graphql.types import LIST_CAP

    graphql_schema = schema._schema
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    chosen = [o for o in operations if operation_name is None or (o.name and o.name.value == operation_name)]
    if len(chosen) != 1:
        return 0  # strawberry names the missing or ambiguous operation
    operation = chosen[0]
    root = graphql_schema.get_root_type(operation.operation)
    variables = variables or {}

    def fields(selection_set: SelectionSetNode | None):
        for node in selection_set.selections if selection_set else ():
            if isinstance(node, FieldNode):
                yield node
            elif isinstance(node, InlineFragmentNode):
                yield from fields(node.selection_set)
            elif isinstance(node, FragmentSpreadNode) and node.name.value in fragments:
                yield from fields(fragments[node.name.value].selection_set)

    def page_size(parent: GraphQLObjectType, node: FieldNode) -> int | None:
        definition = parent.fields.get(node.name.value)
        argument = definition.args.get("limit") if definition else None
        if argument is None:
            return None
        given = next((a.value for a in node.arguments or () if a.name.value == "limit"), None)
        if isinstance(given, VariableNode):
            value = variables.get(given.name.value, argument.default_value)
        elif given is not None:
            value = value_from_ast(given, argument.type, variables)
        else:
            value = argument.default_value
        return max(0, min(value, settings.GRAPHQL_MAX_PAGE_SIZE)) if isinstance(value, int) else 0

    def walk(parent: GraphQLObjectType, selection_set: SelectionSetNode | None, parents: int, pending: int) -> int:
        """Items under ``parents`` objects of ``parent``; ``pending``: the page size asked one level up."""
        total = 0
        for node in fields(selection_set):
            definition = parent.fields.get(node.name.value)
            if definition is None:
                continue  # validation names it
            size = page_size(parent, node)
            is_list = isinstance(get_nullable_type(definition.type), GraphQLList)
            if is_list:
                per_parent = size or pending or (LIST_CAP if (parent.name, node.name.value) in CAPPED_LISTS else 1)
                count = parents * per_parent
                total += count
                inner_pending = 0
            else:
                count = parents
                inner_pending = size or 0  # a page: its `items` list has this many
            named = get_named_type(definition.type)
            if isinstance(named, GraphQLObjectType) and node.selection_set:
                total += walk(named, node.selection_set, count, inner_pending)
        return total

    return walk(root, operation.selection_set, 1, 0)


def check(document: DocumentNode, variables: dict | None, operation_name: str | None) -> None:
    """Raise OverBudget naming the estimate and the budget when the request asks for too much."""
    items = estimated_items(document, variables, operation_name)
    budget = settings.GRAPHQL_MAX_ITEMS
    if items > budget:
        raise OverBudget(
            f"The request could return up to {items:,} list items; at most {budget:,} are allowed. "
            "Ask for smaller pages (limit), fewer aliases, or nested lists in separate requests."
        )
