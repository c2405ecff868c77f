"""Observation reads planned into one SQL statement and answered in the ASGI layer, in front of Django.

An uncached read spends most of its time in Python around one indexed query: uvicorn, Django's
middleware, strawberry's execution, the ORM building SQL, a walk over the rows (docs/benchmarks.md).
For the documents clients send most - one ``observations`` page of plain fields - this layer sends
one prepared statement that reads the data version and builds the whole ``data`` JSON in PostgreSQL,
and answers without entering Django. Only anonymous POSTs of JSON are planned (GET and everything
else is Django's), and only without read replicas (DATABASE_REPLICA_URLS): the planner reads the
primary, and with replicas anonymous reads belong on them, where Django's router sends them.

It learns from strawberry. The first time a document (text and operationName) arrives, Django
answers it. If that answer is clean (200, no errors) and the document is plannable, the answer's
headers are kept (per value of the request headers its ``Vary`` names, as the response cache keys
them), and the planned answer to the same request is compared with Django's bytes: a difference
keeps the document with Django for good (and is logged). Plannable means: one query operation, no
fragments and no directives, its only root field ``observations``, and below it only fields that
are columns of the page, of its items or of their ``members`` - no field extension, no permission
class, no argument, no resolver other than ``members`` (the catalog's breakdown, rebuilt in SQL).
Planning happens only while the schema's extensions are the ones it has today: CheckedDocuments
(parse and validation, per document: it ran when Django answered), DjangoOptimizerExtension (which
changes only querysets) and MaskErrors (a planned answer has no errors). Anything else - another
extension, a field with an extension or permission, a document of another shape - goes to Django.

What Django would do per request still happens or the request goes to Django: the Host check, a
session or CSRF cookie (Django), the request limits (stats.graphql.limits, on the same request
object), the client's time budget (stats.graphql.ratelimit: charged as the view charges it; a
spent budget goes to Django, which answers the 429), the variables coerced by graphql-core against
the schema and the arguments converted by strawberry, then the same named filters and order as the
resolver (stats.graphql.filters, with the catalog of the last data version this process loaded: an
unknown code, a page out of bounds or a catalog older than the data goes to Django, whose answer
is strawberry's). The SQL is the ORM's for those querysets, wrapped in the JSON building; the data
version is read in the same statement (one snapshot), and labels the answer (X-Data-Version, the
ETag). With the response cache in front (stats.graphql.fastpath) a planned answer is kept as
Django's would be. ``GRAPHQL_PLANNED=0`` turns it off.

PostgreSQL's text matches strawberry's: decimals are ``trim_scale(x)::text`` (format_decimal's
digits), strings ``to_json`` (the same escapes as Python's json below U+007F; characters above are
escaped here as json.dumps does), enums by a CASE from the enum's own values, items aggregated in
the order of the page's ORDER BY subquery (PostgreSQL feeds an aggregate a sorted subquery's rows
in order), members in the catalog's breakdown order (dimension order, then code).
"""

from __future__ import annotations

import io
import json
import logging
import re
import time
from collections import OrderedDict
from decimal import Decimal
from functools import cache as memoize
from typing import Any

import psycopg
import strawberry
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import SynchronousOnlyOperation
from django.core.handlers.asgi import ASGIRequest
from graphql import FieldNode, GraphQLError, OperationDefinitionNode, OperationType
from graphql.execution.values import get_argument_values, get_variable_values
from psycopg_pool import PoolTimeout
from strawberry.extensions import MaskErrors
from strawberry.types.arguments import convert_arguments
from strawberry.types.base import StrawberryOptional
from strawberry.types.enum import StrawberryEnumDefinition
from strawberry_django.optimizer import DjangoOptimizerExtension

from ncmec import replicas
from stats import lookups, models
from stats.graphql import cache, documents, fastpath, http_caching, limits, ratelimit
from stats.graphql.documents import CheckedDocuments
from stats.graphql.filters import filter_observations, order_observations
from stats.graphql.pages import page_bounds
from stats.models.observations import DATA_VERSION_SQL

logger = logging.getLogger(__name__)

PLANNABLE_EXTENSIONS = (CheckedDocuments, DjangoOptimizerExtension, MaskErrors)
PAGE_FIELDS = ("totalCount", "offset", "limit", "hasNextPage", "items")
MAX_DOCUMENTS = 1000  # documents remembered (plans and learned headers); beyond that, Django answers the rest
MAX_STATEMENTS = 256  # per document: the SQL of its most recent distinct variables
PREPARE_THRESHOLD = 5  # psycopg's default; the planner prepares its statements at once anyway (prepare=True)
MAX_HEADER_SETS = 64  # per document: Django's headers for this many values of the headers it varies on
NON_ASCII = re.compile(r"[^\x00-\x7e]")


class NotPlannable(Exception):  # control flow: Django answers
    """This request (or document) is Django's."""


@memoize
def schema_plannable() -> bool:
    """Whether the schema's extensions are only those a planned answer honours (see the module docstring)."""
    from stats.graphql.schema import schema

    for factory in schema.extensions:  # classes, or factories of instances (MaskErrors with its options)
        kind = factory if isinstance(factory, type) else type(factory())
        if not issubclass(kind, PLANNABLE_EXTENSIONS):
            return False
    return True


def _plain(field) -> bool:
    return not field.extensions and not field.permission_classes


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _json_sql(field, column: str) -> str:
    """SQL for a column's JSON text as strawberry serializes the field's type."""
    kind = field.type.of_type if isinstance(field.type, StrawberryOptional) else field.type
    if kind is strawberry.ID:
        text = f"to_json({column}::text)::text"
    elif kind is int:
        text = f"{column}::text"
    elif kind is bool:
        text = f"CASE WHEN {column} THEN 'true' WHEN NOT {column} THEN 'false' END"
    elif kind is Decimal:
        text = f"'\"' || trim_scale({column})::text || '\"'"
    elif kind is str:
        text = f"to_json({column})::text"
    elif isinstance(kind, StrawberryEnumDefinition):
        cases = " ".join(f"WHEN {_literal(v.value)} THEN {_literal(json.dumps(v.name))}" for v in kind.values)
        text = f"CASE {column} {cases} END"
    else:
        raise NotPlannable(f"{field.python_name}: type {kind}")
    return f"COALESCE({text}, 'null')"


def _object_sql(fields: list[tuple[str, str]]) -> str:
    """``{"key":value,...}`` from (response key, SQL of the value's JSON text)."""
    parts = [_literal("{")]
    for i, (key, value) in enumerate(fields):
        parts += [_literal(("," if i else "") + json.dumps(key) + ":"), value]
    return " || ".join([*parts, _literal("}")])


def _selected(node: FieldNode | OperationDefinitionNode) -> list[FieldNode]:
    """The fields below ``node``: plain fields only (no fragment, directive, argument), each key once."""
    found, keys = [], set()
    for selection in node.selection_set.selections if node.selection_set else ():
        if not isinstance(selection, FieldNode) or selection.directives:
            raise NotPlannable("a fragment or directive")
        key = (selection.alias or selection.name).value
        if key in keys:
            raise NotPlannable("a field asked twice")
        keys.add(key)
        found.append(selection)
    return found


def _fields(type_name: str) -> dict[str, Any]:
    from stats.graphql.schema import schema

    definition = schema.get_type_by_name(type_name)
    name = schema.config.name_converter.get_graphql_name
    return {name(f): f for f in definition.fields}


class Plan:
    """What a document asks of ``observations``, as SQL fragments; ``statement`` fills in a request's arguments."""

    def __init__(self, query: str, operation_name: str | None) -> None:
        from stats.graphql.schema import schema

        self.schema = schema
        document = documents.parsed(query)
        operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        if len(operations) != len(document.definitions):
            raise NotPlannable("fragments")
        chosen = [o for o in operations if operation_name is None or (o.name and o.name.value == operation_name)]
        if len(chosen) != 1 or chosen[0].operation != OperationType.QUERY or chosen[0].directives:
            raise NotPlannable("not one query operation")
        self.operation = chosen[0]
        roots = _selected(self.operation)
        if len(roots) != 1 or roots[0].name.value != "observations":
            raise NotPlannable("not one observations field")
        self.root = roots[0]
        self.root_key = (self.root.alias or self.root.name).value
        self.field = _fields("Query")["observations"]
        self.field_definition = schema._schema.query_type.fields["observations"]
        page_fields, item_fields, member_fields = _fields("ObservationPage"), _fields("Observation"), _fields("Member")
        if not _plain(self.field):
            raise NotPlannable("observations has an extension or permission")
        self.page: list[tuple[str, str, list]] = []  # (response key, page field, its item selections)
        self.columns: set[str] = set()
        for node in _selected(self.root):
            name = node.name.value
            if name not in PAGE_FIELDS or node.arguments or not _plain(page_fields[name]):
                raise NotPlannable(f"ObservationPage.{name}")
            items = []
            if name == "items":
                for item in _selected(node):
                    items.append(self._item(item, item_fields, member_fields))
            elif node.selection_set:
                raise NotPlannable("a selection below a scalar")
            self.page.append(((node.alias or node.name).value, name, items))
        self.has_page = any(name in ("items", "hasNextPage") for _, name, _ in self.page)

    def _item(self, node: FieldNode, item_fields: dict, member_fields: dict) -> tuple[str, str]:
        """(response key, SQL of the item field's JSON text, reading the page row ``p``)."""
        key, field = (node.alias or node.name).value, item_fields.get(node.name.value)
        if field is None or node.arguments or not _plain(field):
            raise NotPlannable(f"Observation.{node.name.value}")
        if field.python_name == "members":  # the catalog's breakdown, in SQL
            members = []
            for child in _selected(node):
                member = member_fields.get(child.name.value)
                if (
                    member is None
                    or member.base_resolver
                    or child.arguments
                    or child.selection_set
                    or not _plain(member)
                ):
                    raise NotPlannable(f"Member.{child.name.value}")
                column = models.Member._meta.get_field(member.django_name).column
                members.append(((child.alias or child.name).value, _json_sql(member, f'm."{column}"')))
            self.columns.add("member_ids")
            return key, (
                f"(SELECT '[' || COALESCE(string_agg({_object_sql(members)}, ',' ORDER BY d.\"order\", d.code), '') "
                f"|| ']' FROM unnest(p.member_ids) AS u(id) JOIN {models.Member._meta.db_table} m ON m.id = u.id "
                f"JOIN {models.Dimension._meta.db_table} d ON d.id = m.dimension_id)"
            )
        if field.base_resolver or field.is_relation or node.selection_set:
            raise NotPlannable(f"Observation.{node.name.value} is not a column")
        model_field = models.Observation._meta.get_field(field.django_name)
        if model_field.column != model_field.name:
            raise NotPlannable(f"Observation.{node.name.value}: column {model_field.column}")
        self.columns.add(model_field.name)
        return key, _json_sql(field, f'p."{model_field.column}"')

    def arguments(self, variables: dict | None) -> dict:
        """The resolver's arguments, coerced by graphql-core and converted by strawberry (NotPlannable on an error)."""
        coerced = get_variable_values(self.schema._schema, self.operation.variable_definitions or (), variables or {})
        if isinstance(coerced, list):
            raise NotPlannable("variables")
        try:
            values = get_argument_values(self.field_definition, self.root, coerced)
        except GraphQLError as exc:
            raise NotPlannable("arguments") from exc
        converter = self.schema.schema_converter
        return convert_arguments(values, self.field.arguments, scalar_registry=converter.scalar_registry,
                                 config=self.schema.config)  # fmt: skip

    def statement(self, arguments: dict, lookup: lookups.CatalogLookup) -> tuple[str, list]:
        """One statement: the data version and the ``data`` JSON text, for these arguments."""
        try:
            limit, offset = page_bounds(arguments.get("limit", 100), arguments.get("offset", 0))
            qs = filter_observations(models.Observation.objects.all(), arguments.get("filter"), lookup)
        except GraphQLError as exc:  # strawberry's error, by strawberry
            raise NotPlannable("refused") from exc
        sql, params = ["SELECT v.counter, v.at, "], []
        if self.has_page:
            ordered = order_observations(qs, arguments.get("order"), arguments.get("filter"))
            page = ordered.values_list(*sorted(self.columns | {"id"}))[offset : offset + limit + 1]
            page_sql, page_params = page.query.sql_with_params()
            sql.insert(0, f"WITH page AS MATERIALIZED ({page_sql}) ")
            params += page_params
        fields = []
        for key, name, items in self.page:
            if name == "totalCount":
                count_sql, count_params = qs.order_by().values_list("id").query.sql_with_params()
                fields.append((key, f"(SELECT count(*) FROM ({count_sql}) AS c)::text"))
                params += count_params
            elif name == "offset":
                fields.append((key, _literal(str(offset))))
            elif name == "limit":
                fields.append((key, _literal(str(limit))))
            elif name == "hasNextPage":
                fields.append((key, f"(SELECT CASE WHEN count(*) > {limit} THEN 'true' ELSE 'false' END FROM page)"))
            else:
                fields.append((key, (
                    f"(SELECT '[' || COALESCE(string_agg(f.item, ','), '') || ']' FROM "
                    f"(SELECT {_object_sql(items)} AS item FROM (SELECT * FROM page LIMIT {limit}) AS p) AS f)"
                )))  # fmt: skip
        sql.append(_object_sql([(self.root_key, _object_sql(fields))]))
        sql.append(f" FROM ({DATA_VERSION_SQL}) AS v(counter, at)")
        return "".join(sql), params


def ascii_json(text: str) -> str:
    """PostgreSQL's JSON text as json.dumps writes it (ensure_ascii): characters above U+007E escaped."""
    if text.isascii() and "\x7f" not in text:
        return text
    return NON_ASCII.sub(_escape, text)


def _escape(match: re.Match) -> str:
    code = ord(match.group())
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000
    return f"\\u{0xD800 | (code >> 10):04x}\\u{0xDC00 | (code & 0x3FF):04x}"


def parsed_request(scope: dict, body: bytes) -> tuple[str, dict | None, str | None] | None:
    """(document, variables, operationName) of a plain JSON POST; None for anything else (Django's)."""
    content_type = fastpath.request_headers(scope).get(b"content-type", b"").split(b";")[0].strip().lower()
    if content_type != b"application/json":
        return None
    try:
        payload = limits.decode_json(body, "request body")
    except limits.LimitExceeded:  # Django refuses it with the message
        return None
    if not isinstance(payload, dict) or not set(payload) <= {"query", "variables", "operationName"}:
        return None
    query, variables, operation_name = payload.get("query"), payload.get("variables"), payload.get("operationName")
    if (
        not isinstance(query, str)
        or not isinstance(variables, dict | None)
        or not isinstance(operation_name, str | None)
    ):
        return None
    return query, variables, operation_name


class Learned:
    """A plannable document: its plan, the Vary of Django's answer, and its headers per Vary key."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.vary: tuple[bytes, ...] | None = None
        self.headers: dict[tuple, list[tuple[bytes, bytes]]] = {}
        self.broken = False  # a planned answer differed from Django's: never again
        # The statement per (variables, catalog version): the ORM builds each once, not per request.
        self.statements: OrderedDict[tuple, tuple[str, list]] = OrderedDict()

    def statement(self, variables: dict | None, stamp: tuple[int, str], lookup: lookups.CatalogLookup):
        """(SQL, parameters) for these variables with the catalog of ``stamp`` (NotPlannable: Django answers)."""
        key = (json.dumps(variables, sort_keys=True), stamp)
        found = self.statements.get(key)
        if found is None:
            found = self.statements[key] = self.plan.statement(self.plan.arguments(variables), lookup)
            if len(self.statements) > MAX_STATEMENTS:
                self.statements.popitem(last=False)
        else:
            self.statements.move_to_end(key)
        return found

    def key(self, scope: dict) -> tuple:
        headers = fastpath.request_headers(scope)
        names = (*fastpath.URL_HEADERS, *(self.vary or ()))
        return (scope.get("scheme", "http"), *(headers.get(name, b"") for name in names))


NOT_PLANNABLE = object()


def threshold() -> int | None:
    """psycopg's prepare_threshold for the planner's connections. Django turns prepared statements off
    unless its OPTIONS name a threshold (psycopg then parses and plans every statement anew); here they are
    the point. A database behind a pooler that cannot keep them: set ``prepare_threshold: None`` in OPTIONS."""
    options = settings.DATABASES["default"].get("OPTIONS", {})
    return options.get("prepare_threshold", PREPARE_THRESHOLD)


class PlannedReads:
    """ASGI middleware: plannable observation reads answered by one statement; everything else Django's."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.reader = fastpath.DataVersionReader(application_name="ncmec-planned-reads", prepare_threshold=threshold())
        self.documents: dict[tuple, Learned | object] = {}

    async def __call__(self, scope: dict, receive, send) -> None:
        if (
            scope["type"] != "http"
            or scope["path"] != fastpath.PATH
            or scope["method"] != "POST"
            or not settings.GRAPHQL_PLANNED
            or replicas.aliases()  # reads belong on the replicas then (Django's router sends them there)
            or fastpath.has_session(scope)
            or not fastpath.allowed_host(scope)
            or not schema_plannable()
        ):
            return await self.app(scope, receive, send)
        messages, body = await fastpath.read_body(receive)
        django = lambda send=send: self.app(scope, fastpath.replay(messages, receive), send)  # noqa: E731
        request = parsed_request(scope, body) if body is not None else None
        if request is None:
            return await django()
        document_key = (*request[::2], bool(settings.GRAPHQL_CACHE_MB))
        learned = self.documents.get(document_key)
        if learned is None:
            learned = self._plan(document_key, request)
        if learned is NOT_PLANNABLE or learned.broken:
            return await django()
        headers = learned.headers.get(learned.key(scope)) if learned.vary is not None else None
        if headers is None:
            return await django(self._learning(send, scope, body, request, learned))
        answer = await self.answer(scope, body, request, learned, headers)
        if answer is None:
            return await django()
        await send({"type": "http.response.start", "status": 200, "headers": answer[0]})
        await send({"type": "http.response.body", "body": answer[1]})

    def _plan(self, document_key: tuple, request: tuple) -> Learned | object:
        try:
            learned = Learned(Plan(request[0], request[2]))
        except (NotPlannable, GraphQLError, limits.LimitExceeded) as exc:
            logger.debug("not planned: %s", exc)
            learned = NOT_PLANNABLE
        except Exception:
            logger.exception("cannot plan; document left to Django: %.200s", request[0])
            learned = NOT_PLANNABLE
        if len(self.documents) < MAX_DOCUMENTS:
            self.documents[document_key] = learned
        return learned

    async def answer(self, scope: dict, body: bytes, request: tuple, learned: Learned, headers: list, charge=True):
        """(headers, body) of the planned answer, or None when Django must answer. An unexpected failure
        leaves the document to Django for good (strawberry then answers, masks and logs as it does)."""
        try:
            return await self._answer(scope, body, request, learned, headers, charge)
        except Exception:
            logger.exception("planned read failed; document left to Django: %.200s", request[0])
            learned.broken = True
            return None

    async def _answer(self, scope: dict, body: bytes, request: tuple, learned: Learned, headers: list, charge: bool):
        started = time.perf_counter()
        http_request = ASGIRequest(scope, io.BytesIO(body))
        http_request.user = AnonymousUser()
        if limits.request_refusal(http_request) is not None or ratelimit.refusal(http_request) is not None:
            return None  # Django refuses it, with its own answer
        current = lookups.CatalogLookup.current()
        if current is None:
            return None
        stamp, lookup = current
        query, variables, operation_name = request
        try:
            sql, params = learned.statement(variables, stamp, lookup)
        except (NotPlannable, SynchronousOnlyOperation):
            return None  # Django answers; a part of the catalog not loaded yet (topics...) it loads then
        try:
            pool = await self.reader.pool()
            async with pool.connection(timeout=fastpath.POOL_TIMEOUT_S) as connection:
                row = await (await connection.execute(sql, params, prepare=True)).fetchone()
        except (PoolTimeout, psycopg.Error) as exc:
            logger.debug("planned read failed (%s); Django answers", exc)
            return None
        if row is None or (row[0], row[1].isoformat()) != stamp:
            return None  # a write since the catalog was loaded: Django answers with the new one
        content = ('{"data":' + ascii_json(row[2]) + "}").encode()
        if charge:
            ratelimit.charge(http_request, time.perf_counter() - started)
        key = cache.key_of(stamp, "anonymous", query, variables, operation_name) if settings.GRAPHQL_CACHE_MB else None
        verdict = scope.get("stats.response_cache")
        if verdict is not None and key:
            verdict.update(cacheable=True, stamp=stamp)
        replaced = {b"content-length": str(len(content)).encode(), b"x-data-version": str(stamp[0]).encode()}
        etag = http_caching.etag(key, stamp)
        if etag:
            replaced[b"etag"] = etag.encode()
        return [(k, replaced.get(k.lower(), v)) for k, v in headers], content

    def _learning(self, send, scope: dict, body: bytes, request: tuple, learned: Learned):
        """A send callable that passes Django's answer on, then learns its headers if it is clean and
        the planned answer to the same request is the same bytes."""
        start: dict = {}
        chunks: list[bytes] = []

        async def record(message: dict) -> None:
            await send(message)
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    await self._learn(scope, body, request, learned, start, b"".join(chunks))

        return record

    async def _learn(self, scope, body, request, learned: Learned, start: dict, content: bytes) -> None:
        headers = start.get("headers", [])
        if start.get("status") != 200 or any(k.lower() == b"set-cookie" for k, _ in headers):
            return
        try:
            answer = json.loads(content)
        except ValueError:
            return
        if not isinstance(answer, dict) or set(answer) != {"data"}:
            return  # errors: nothing to learn from
        vary = fastpath.vary_names(headers)
        if vary is None or (learned.vary is not None and learned.vary != vary):
            return
        learned.vary = vary
        planned = await self.answer(scope, body, request, learned, headers, charge=False)
        if planned is None:
            return  # not this time (a write came in, a code Django refused...): Django answers the next one too
        if planned[1] != content or sorted(planned[0]) != sorted(headers):
            version = lambda found: {k.lower(): v for k, v in found}.get(b"x-data-version")  # noqa: E731
            same_version = version(planned[0]) == version(headers)
            if same_version:
                logger.warning("planned answer differs from strawberry's; document left to Django: %.200s", request[0])
                learned.broken = True
            return
        if len(learned.headers) < MAX_HEADER_SETS:
            learned.headers[learned.key(scope)] = headers
