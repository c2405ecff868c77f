"""Parsed and validated documents, each checked against the limits once, kept by size.

Dashboards send the same few documents over and over: each is parsed, measured
(stats.graphql.limits) and validated once per process. The caches are bounded by the bytes they
hold, estimated from the document's length (an AST takes up to ~100 bytes per character), and a
document longer than GRAPHQL_CACHED_DOCUMENT_CHARS is never kept, so one-off large documents can
neither grow a worker nor push the dashboards' documents out.

Validation hides graphql-core's suggestions ("Did you mean ...?") unless DEBUG is on.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable, Iterator, Sequence
from typing import Any

from django.conf import settings
from graphql import ASTValidationRule, DocumentNode, GraphQLError, GraphQLSchema, validate
from strawberry.extensions import SchemaExtension
from strawberry.schema.validation_rules.maybe_null import MaybeNullValidationRule
from strawberry.schema.validation_rules.one_of import OneOfInputValidationRule

from stats.graphql import limits

AST_BYTES_PER_CHARACTER = 100  # measured on the README's queries: 50-95


def estimated_size(query: str) -> int:
    return len(query) * AST_BYTES_PER_CHARACTER


def keepable(query: str) -> bool:
    return len(query) <= settings.GRAPHQL_CACHED_DOCUMENT_CHARS


class BoundedCache:
    """A least-recently-used map bounded by the (estimated) bytes of its entries."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def get(self, key: Hashable, default: Any = None) -> Any:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return default
            self._entries.move_to_end(key)
            return entry[0]

    def put(self, key: Hashable, value: Any, size: int) -> None:
        if size > self.max_bytes:
            return
        with self._lock:
            old = self._entries.pop(key, None)
            self._size += size - (old[1] if old is not None else 0)
            self._entries[key] = (value, size)
            while self._size > self.max_bytes:
                _, (_, evicted) = self._entries.popitem(last=False)
                self._size -= evicted

    @property
    def size(self) -> int:
        return self._size

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._size = 0


def cache_bytes() -> int:
    return settings.GRAPHQL_DOCUMENT_CACHE_MB * 1024 * 1024


_parsed = BoundedCache(cache_bytes())
_validated = BoundedCache(cache_bytes())
_last = threading.local()  # the last document of this thread: a request's view, cache key and parse share it


def parsed(query: str) -> DocumentNode:
    """``query`` parsed and within every limit (raises LimitExceeded or GraphQLSyntaxError)."""
    if getattr(_last, "query", None) == query:
        return _last.document
    document = _parsed.get(query)
    if document is None:
        document = limits.parse_document(query)
        if keepable(query):
            _parsed.put(query, document, estimated_size(query))
    _last.query, _last.document = query, document
    return document


def validated(
    schema: GraphQLSchema, query: str, document: DocumentNode, rules: Sequence[type[ASTValidationRule]]
) -> list[GraphQLError]:
    """graphql-core's validation (with strawberry's two rules), once per document and set of rules."""
    key = (query, tuple(rules))
    errors = _validated.get(key)
    if errors is None:
        all_rules = (*rules, MaybeNullValidationRule, OneOfInputValidationRule)
        errors = validate(schema, document, all_rules, hide_suggestions=not settings.DEBUG)
        if keepable(query):
            _validated.put(key, errors, estimated_size(query))
    return errors


def clear() -> None:
    _parsed.clear()
    _validated.clear()
    _last.__dict__.clear()


class CheckedDocuments(SchemaExtension):
    """Strawberry parses and validates through the checked, cached documents (never around them)."""

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        if context.graphql_document is None and context.query:
            limits.check_input(context.variables, "variables")
            context.graphql_document = parsed(context.query)
        yield

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        if context.pre_execution_errors is None and context.query:
            context.pre_execution_errors = validated(
                context.schema._schema, context.query, context.graphql_document, context.validation_rules
            )
        yield
