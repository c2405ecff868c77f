"""Offset pages: the bounds of their arguments, and what a query asks of a page.

Root lists and nested lists share both, so a page reads and refuses the same way wherever it is.
"""

from __future__ import annotations

from django.conf import settings
from graphql import GraphQLError
from strawberry.types import Info
from strawberry.types.nodes import SelectedField

# What a page's `limit` argument says about itself (the same words on every paged field).
LIMIT_DESCRIPTION = "Page size: at least 1, at most the server's maximum (GRAPHQL_MAX_PAGE_SIZE, 10,000 by default)."
OFFSET_DESCRIPTION = "How many items to skip (0 for the first page)."


def page_bounds(limit: int, offset: int) -> tuple[int, int]:
    """The page's limit and offset, refused with a clear message when out of bounds."""
    cap = settings.GRAPHQL_MAX_PAGE_SIZE
    if limit < 1:
        raise GraphQLError("limit must be at least 1")
    if limit > cap:
        raise GraphQLError(f"limit {limit} is over the maximum page size of {cap}; ask for more pages")
    if offset < 0:
        raise GraphQLError("offset cannot be negative")
    return limit, offset


def selects(selections, path: tuple[str, ...]) -> bool:
    """Whether the query asks for the field at ``path`` below these selections (through fragments).

    Directives are not evaluated: a field under ``@skip`` counts as asked for (it only costs a query).
    """
    for selection in selections:
        if isinstance(selection, SelectedField):
            if not path or selection.name != path[0]:
                continue
            if len(path) == 1 or selects(selection.selections, path[1:]):
                return True
        elif selects(selection.selections, path):  # fragment spread or inline fragment
            return True
    return False


def asked(info: Info) -> list:
    """The selections below the field being resolved (what the query asks of its value)."""
    return [child for field in info.selected_fields for child in field.selections]


def fields_below(selections, name: str) -> list[SelectedField]:
    """The fields selected directly below every ``name`` field of these selections (through fragments)."""
    found = []
    for selection in selections:
        if not isinstance(selection, SelectedField):
            found += fields_below(selection.selections, name)
        elif selection.name == name:
            found += _flatten(selection.selections)
    return found


def _flatten(selections) -> list[SelectedField]:
    fields = []
    for selection in selections:
        fields += [selection] if isinstance(selection, SelectedField) else _flatten(selection.selections)
    return fields
