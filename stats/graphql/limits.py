"""The public endpoint's limits, measured on the whole request before any work that grows with it.

The endpoint is anonymous, so every request must cost bounded work. One set of checks, used by
every entry: the ASGI layer refuses an oversized body before Django or the fast path reads it
(``BodyLimit``); the view refuses a request over any limit with a 400 before it touches the
database (``request_refusal``); the response cache's key and strawberry's parse both parse
through ``parse_document`` (with stats.graphql.documents caching the result), so no entry parses
without the token limit.

Fragments are measured once each: a fragment's fields, aliases and depth are remembered where it
is defined, so a document whose fragments spread each other twice over (2**n paths) is measured
in time linear in its length. Strawberry's QueryDepthLimiter and MaxAliasesLimiter walk every
path instead (docs/security.md has the reproduction), so their limits are enforced here.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from dataclasses import dataclass

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from graphql import (
    ArgumentNode,
    DirectiveNode,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLSyntaxError,
    InlineFragmentNode,
    ListValueNode,
    Node,
    ObjectValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    StringValueNode,
    ValueNode,
    parse,
)

from stats.graphql import budget, documents  # parse_document's cache; it calls back only at run time

QUOTED_CHARACTERS = 100  # of client input in any error message
MAX_MESSAGE = 500
# PostgreSQL text cannot hold NUL, and an unpaired surrogate cannot be encoded: refused up front.
BAD_CHARACTERS = re.compile("[\x00\ud800-\udfff]")
TOKEN_LIMIT_MESSAGE = "tokens. Parsing aborted."  # graphql-core's wording when max_tokens is hit


class LimitExceeded(GraphQLError):
    """A request over one of the limits: the client's to fix, answered with a 400."""


# -- quoting client input ---------------------------------------------------------------------
def quote(value: object) -> str:
    """``value`` quoted for an error message, at most QUOTED_CHARACTERS of it."""
    text = value if isinstance(value, str) else repr(value)
    if len(text) > QUOTED_CHARACTERS:
        text = text[:QUOTED_CHARACTERS] + "…"
    return f"'{text}'"


_LONG_QUOTES = re.compile(rf"""(["'])([^"']{{{QUOTED_CHARACTERS}}})[^"']+\1""")


def shorten(message: str) -> str:
    """An error message quoting at most QUOTED_CHARACTERS of any one input (graphql-core's and
    our resolvers' messages echo values in quotes), and at most MAX_MESSAGE characters in all."""
    message = _LONG_QUOTES.sub(lambda m: f"{m[1]}{m[2]}…{m[1]}", message)
    return message if len(message) <= MAX_MESSAGE else message[:MAX_MESSAGE] + "…"


# -- input values (JSON variables and document literals) ------------------------------------
def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "a list" if isinstance(value, list) else "an object"


def _path(parts: tuple) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts).lstrip(".")


def _check_string(text: str, where: str) -> None:
    if BAD_CHARACTERS.search(text):
        raise LimitExceeded(f"{where}: a string may not contain NUL (U+0000) or unpaired surrogate characters.")


def check_input(value: object, name: str) -> None:
    """Variables (or extensions) decoded from JSON: nesting, list lengths and strings within the limits."""
    max_depth, max_items = settings.GRAPHQL_MAX_INPUT_DEPTH, settings.GRAPHQL_MAX_LIST_ITEMS
    stack: list[tuple[object, int, tuple]] = [(value, -1, (name,))]  # each value's nesting counts from 0
    while stack:
        value, depth, parts = stack.pop()
        if isinstance(value, str):
            _check_string(value, _path(parts))
        elif isinstance(value, dict | list):
            if depth >= max_depth:
                raise LimitExceeded(f"{_path(parts)}: input nested more than {max_depth} levels deep.")
            if isinstance(value, list):
                if len(value) > max_items:
                    raise LimitExceeded(f"{_path(parts)}: {len(value)} items; at most {max_items} are allowed.")
                stack.extend((item, depth + 1, (*parts, i)) for i, item in enumerate(value))
            else:
                for key, item in value.items():
                    _check_string(key, _path(parts))
                    stack.append((item, depth + 1, (*parts, key[:QUOTED_CHARACTERS])))


def _check_literal(value: ValueNode, where: str) -> None:
    """An argument or default value written in the document: the same limits as variables."""
    max_depth, max_items = settings.GRAPHQL_MAX_INPUT_DEPTH, settings.GRAPHQL_MAX_LIST_ITEMS
    stack = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, StringValueNode):
            _check_string(node.value, where)
        elif isinstance(node, ListValueNode | ObjectValueNode):
            if depth >= max_depth:
                raise LimitExceeded(f"{where}: input nested more than {max_depth} levels deep.")
            if isinstance(node, ListValueNode):
                if len(node.values) > max_items:
                    raise LimitExceeded(f"{where}: {len(node.values)} items; at most {max_items} are allowed.")
                stack.extend((item, depth + 1) for item in node.values)
            else:
                stack.extend((field.value, depth + 1) for field in node.fields)


def decode_json(raw: bytes | str, what: str) -> object:
    """JSON from a client: a 400's message for anything that is not JSON (bad UTF-8, too deep)."""
    try:
        return json.loads(raw)
    except UnicodeDecodeError as exc:
        raise LimitExceeded(f"The {what} is not valid UTF-8 (at byte offset {exc.start}).") from None
    except json.JSONDecodeError as exc:
        raise LimitExceeded(
            f"The {what} is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})."
        ) from None
    except RecursionError:
        raise LimitExceeded(f"The {what} nests too deeply.") from None


# -- documents ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Size:
    """What a selection set costs once its fragments are expanded."""

    fields: int = 0
    aliases: int = 0
    depth: int = 0  # fields nested below, as strawberry's QueryDepthLimiter counts them


class Measure:
    """One walk over a document, each fragment measured once (its Size remembered)."""

    def __init__(self, document: DocumentNode) -> None:
        self.fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
        self.sizes: dict[str, Size] = {}
        self.entered: list[str] = []  # fragments being measured: a spread of one of them is a cycle

    def directives(self, node: Node, where: str) -> None:
        directives: tuple[DirectiveNode, ...] = getattr(node, "directives", None) or ()
        if len(directives) > settings.GRAPHQL_MAX_DIRECTIVES:
            raise LimitExceeded(
                f"{len(directives)} directives on {where}; at most {settings.GRAPHQL_MAX_DIRECTIVES} are allowed."
            )
        for directive in directives:
            self.arguments(directive.arguments, f"directive @{directive.name.value}")

    def arguments(self, arguments: tuple[ArgumentNode, ...] | None, where: str) -> None:
        for argument in arguments or ():
            _check_literal(argument.value, f"argument {argument.name.value} of {where}")

    def fragment(self, name: str) -> Size:
        size = self.sizes.get(name)
        if size is not None:
            return size
        fragment = self.fragments.get(name)
        if fragment is None:
            return Size()  # an unknown fragment: validation names it
        if name in self.entered:
            cycle = self.entered[self.entered.index(name) :]
            raise LimitExceeded(f"Cannot spread fragment {quote(name)} within itself (via {', '.join(cycle)}).")
        self.entered.append(name)
        self.directives(fragment, f"fragment {name}")
        size = self.sizes[name] = self.selections(fragment.selection_set)
        self.entered.pop()
        return size

    def selections(self, selection_set: SelectionSetNode | None) -> Size:
        fields = aliases = depth = 0
        for node in selection_set.selections if selection_set else ():
            if isinstance(node, FieldNode):
                self.directives(node, f"field {node.name.value}")
                self.arguments(node.arguments, f"field {node.name.value}")
                inner = self.selections(node.selection_set)
                fields += 1 + inner.fields
                aliases += (node.alias is not None) + inner.aliases
                if node.selection_set and not node.name.value.startswith("__"):  # introspection: as strawberry
                    depth = max(depth, 1 + inner.depth)
                continue
            if isinstance(node, InlineFragmentNode):
                self.directives(node, "an inline fragment")
                inner = self.selections(node.selection_set)
            else:
                assert isinstance(node, FragmentSpreadNode)
                self.directives(node, f"the spread of {node.name.value}")
                inner = self.fragment(node.name.value)
            fields += inner.fields
            aliases += inner.aliases
            depth = max(depth, inner.depth)
        return Size(fields, aliases, depth)

    def check(self, document: DocumentNode) -> None:
        for name in self.fragments:
            self.fragment(name)
        fields = aliases = 0
        for operation in document.definitions:
            if not isinstance(operation, OperationDefinitionNode):
                continue
            name = operation.name.value if operation.name else "anonymous"
            self.directives(operation, f"operation {name}")
            for variable in operation.variable_definitions or ():
                self.directives(variable, f"variable ${variable.variable.name.value}")
                if variable.default_value is not None:
                    _check_literal(variable.default_value, f"the default of ${variable.variable.name.value}")
            size = self.selections(operation.selection_set)
            if size.depth > settings.GRAPHQL_MAX_DEPTH:
                raise LimitExceeded(f"'{name}' exceeds maximum operation depth of {settings.GRAPHQL_MAX_DEPTH}")
            fields += size.fields
            aliases += size.aliases
        if aliases > settings.GRAPHQL_MAX_ALIASES:
            raise LimitExceeded(f"{aliases} aliases found. Allowed: {settings.GRAPHQL_MAX_ALIASES}")
        if fields > settings.GRAPHQL_MAX_FIELDS:
            raise LimitExceeded(
                f"The document selects {fields} fields once its fragments are expanded; "
                f"at most {settings.GRAPHQL_MAX_FIELDS} are allowed."
            )


def parse_document(query: str) -> DocumentNode:
    """The document parsed within the token limit and measured against every other limit.

    Raises LimitExceeded for a document over a limit, GraphQLSyntaxError for one that is not GraphQL.
    """
    if len(query) > settings.GRAPHQL_MAX_DOCUMENT_CHARS:
        raise LimitExceeded(
            f"The document is {len(query)} characters long; at most {settings.GRAPHQL_MAX_DOCUMENT_CHARS} are allowed."
        )
    try:
        document = parse(query, max_tokens=settings.GRAPHQL_MAX_TOKENS)
    except GraphQLSyntaxError as exc:
        if exc.message.endswith(TOKEN_LIMIT_MESSAGE):
            raise LimitExceeded(
                f"The document has more than {settings.GRAPHQL_MAX_TOKENS} tokens; "
                f"at most {settings.GRAPHQL_MAX_TOKENS} are allowed."
            ) from None
        raise
    try:
        Measure(document).check(document)
    except RecursionError:
        raise LimitExceeded("The document nests fragments or selections too deeply.") from None
    return document


# -- requests ---------------------------------------------------------------------------------
def refused(message: str, status: int = 400) -> JsonResponse:
    """A GraphQL-shaped refusal: the message says what is wrong and where."""
    return JsonResponse({"errors": [{"message": message}]}, status=status)


def too_large(size: int) -> str:
    return f"The request is {size} bytes; at most {settings.GRAPHQL_MAX_BODY_BYTES} are accepted."


MEMBERS = {"query": (str, "a string"), "operationName": (str, "a string"), "variables": (dict, "an object"),
           "extensions": (dict, "an object")}  # fmt: skip


def check_request(request: HttpRequest) -> None:
    """Raise LimitExceeded when the request is malformed or over a limit (what strawberry would parse)."""
    limit = settings.GRAPHQL_MAX_BODY_BYTES
    if request.method == "GET":
        if "query" not in request.GET:
            return  # GraphiQL's page
        if len(request.META.get("QUERY_STRING", "")) > limit:
            raise LimitExceeded(too_large(len(request.META["QUERY_STRING"])))
        params = request.GET
        payload = {
            "query": params.get("query"),
            "operationName": params.get("operationName"),
            **{k: decode_json(params[k], f"{k} parameter") for k in ("variables", "extensions") if params.get(k)},
        }
    elif request.method == "POST" and "application/json" in (request.content_type or ""):
        declared = request.META.get("CONTENT_LENGTH") or "0"
        if not declared.isdigit() or int(declared) > limit:
            raise LimitExceeded(
                too_large(int(declared)) if declared.isdigit() else "The Content-Length is not a number."
            )
        if len(request.body) > limit:
            raise LimitExceeded(too_large(len(request.body)))
        payload = decode_json(request.body, "request body")
        if isinstance(payload, list):
            raise LimitExceeded("Batching is not enabled: send one operation, as a JSON object.")
        if not isinstance(payload, dict):
            raise LimitExceeded(f'The request body must be a JSON object with a "query" string, not {_kind(payload)}.')
    else:
        return  # strawberry refuses other methods and content types itself
    document = payload.get("query")
    for key, (type_, kind) in MEMBERS.items():
        value = payload.get(key)
        if value is not None and not isinstance(value, type_):
            raise LimitExceeded(f'"{key}" must be {kind} or null, not {_kind(value)}.')
    check_input(payload.get("variables"), "variables")
    check_input(payload.get("extensions"), "extensions")
    if document is not None:
        # Checked once, kept for the cache key and strawberry; a syntax error is not over a limit:
        # strawberry answers it with its location.
        with contextlib.suppress(GraphQLSyntaxError):
            parsed = documents.parsed(document)
            try:
                budget.check(parsed, payload.get("variables"), payload.get("operationName"))
            except budget.OverBudget as exc:
                raise LimitExceeded(str(exc)) from None


def request_refusal(request: HttpRequest) -> JsonResponse | None:
    """A 400 naming what is wrong, or None when the request is within every limit."""
    try:
        check_request(request)
    except LimitExceeded as exc:
        return refused(exc.message)
    return None


class BodyLimit:
    """ASGI: a GraphQL request body over GRAPHQL_MAX_BODY_BYTES is refused before anything reads it.

    Django's ASGI handler reads a whole body (to a temporary file) before any view runs, and the
    fast path reads it to key the response cache: this is the one place a body can be refused
    while it arrives. The refusal is sent at once; the rest of the body is then read and dropped
    (up to DRAIN_BYTES, for DRAIN_SECONDS at most) so that a client that sends its whole body
    before reading the answer gets the 400 rather than a reset connection.
    """

    DRAIN_BYTES = 32 * 1024 * 1024
    DRAIN_SECONDS = 5.0

    def __init__(self, app, path: str = "/graphql") -> None:
        self.app = app
        self.path = path

    async def __call__(self, scope: dict, receive, send) -> None:
        if scope["type"] != "http" or scope["path"] != self.path:
            return await self.app(scope, receive, send)
        limit = settings.GRAPHQL_MAX_BODY_BYTES
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            message = too_large(int(declared)) if declared.isdigit() else "The Content-Length is not a number."
            return await self.refuse(send, receive, message)
        received = 0
        over = started = False

        async def counted() -> dict:
            nonlocal received, over
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    over = True
                    return {"type": "http.disconnect"}  # Django and the fast path stop reading
            return message

        async def watched(message: dict) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        await self.app(scope, counted, watched)
        if over and not started:
            await self.refuse(send, receive, too_large(received))

    async def refuse(self, send, receive, message: str) -> None:
        body = json.dumps({"errors": [{"message": message}]}).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"connection", b"close"),
        ]
        await send({"type": "http.response.start", "status": 400, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": True})
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.drain(receive), self.DRAIN_SECONDS)
        await send({"type": "http.response.body", "body": b""})

    async def drain(self, receive) -> None:
        dropped = 0
        while dropped < self.DRAIN_BYTES:
            message = await receive()
            if message["type"] != "http.request":
                return
            dropped += len(message.get("body", b""))
            if not message.get("more_body", False):
                return
