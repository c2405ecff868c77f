"""The HTTP endpoint: GraphiQL in a browser, JSON for apps.

CSRF: requests that carry a session cookie are authenticated and must pass Django's CSRF check
(GraphiQL sends the token from the csrftoken cookie). Requests without one are anonymous and
read-only, so a forged cross-site request gains nothing; they work without a token, which lets
apps and scripts POST plain JSON. This is not the blanket csrf_exempt of CVE-2024-47082.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import time
from contextlib import nullcontext
from functools import cache as memoize

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.contrib.staticfiles import finders
from django.db import DatabaseError, connections
from django.http import HttpResponse, JsonResponse
from django.middleware.csrf import CsrfViewMiddleware, get_token
from django.templatetags.static import static
from django.views.decorators.csrf import csrf_exempt
from strawberry.django.views import GraphQLView

from ncmec import csp, replicas
from stats.graphql import cache, http_caching, limits, persisted, ratelimit
from stats.graphql.folded import FoldedVersion
from stats.graphql.schema import schema
from stats.models import DataVersion

# Strawberry's page names its bundles on unpkg.com; the same pinned files are vendored under
# stats/static/vendor/ (frontend/vendor.mjs), so GraphiQL works offline and from this site only.
GRAPHIQL_CDN = re.compile(r'(?:\s+crossorigin)?\s+(src|href)="https://unpkg\.com/([^"]+)"(?:\s+integrity="[^"]*")?')

EXAMPLE_QUERY = """# NCMEC statistics warehouse: every figure with its source.
# Press the play button (Ctrl-Enter) to run. The Docs panel describes every field.

{
  table(indicator: "missing.cases", year: 2021, rows: "case_type", columns: "case_status") {
    title
    columns { label }
    rows { member { label } cells { valueText flag } total { valueText } }
    totalRow { cells { valueText } total { valueText } }
  }
  series(indicator: "cybertipline.reports") { year valueText qualifier source { slug } percentChange }
}
"""


def database_unavailable() -> JsonResponse:
    """503 with a GraphQL-shaped body: clients retry instead of caching an error as data."""
    response = JsonResponse(
        {"errors": [{"message": "The database is unavailable; try again in a few seconds."}]}, status=503
    )
    response["Retry-After"] = "5"
    response["Cache-Control"] = "no-store"
    return response


class StatsGraphQLView(GraphQLView):
    def render_graphql_ide(self, request):
        get_token(request)  # sets the csrftoken cookie GraphiQL sends back with cookie-authenticated POSTs
        response = super().render_graphql_ide(request)
        # GraphiQL's bundle is served by this site (vendored, with integrity hashes); its one
        # inline script runs by nonce, so an injected script still cannot.
        nonce = secrets.token_urlsafe(16)
        response.content = response.content.replace(b"<script>", f'<script nonce="{nonce}">'.encode())
        response["Content-Security-Policy"] = csp.policy(script_src=[f"'nonce-{nonce}'"])
        return response

    @property
    def graphql_ide_html(self) -> str:
        """Strawberry's GraphiQL page, opening with our example query, its bundles from this site."""
        return graphiql_page(super().graphql_ide_html)

    def process_result(self, request, result):
        request.stats_cacheable = not result.errors  # only clean answers are reused
        answer = super().process_result(request, result)
        for error in answer.get("errors") or ():
            error["message"] = limits.shorten(error["message"])  # never echo a long input back
        return answer

    def dispatch(self, request, *args, **kwargs):
        refusal = limits.request_refusal(request)  # malformed or over a limit: 400 before any work
        if refusal is not None:
            return refusal
        scope = getattr(request, "scope", {})  # ASGI: what stats.graphql.fastpath put there
        if time.monotonic() - _primary_failed_at[0] < RETRY_AFTER_FAILURE_S:
            return database_unavailable()  # failed just now: answer at once instead of waiting for the pool
        anonymous = not http_caching.has_private_cookie(request.COOKIES)
        alias = replicas.choose() if anonymous else replicas.PRIMARY
        request.stats_version_folded = resolved = False
        if anonymous:
            request.user = AnonymousUser()  # no session: no CSRF check either
        last = _last_stamp.get(replicas.PRIMARY)
        if anonymous and last is not None and not scope.get("stats.data_version"):
            unknown, resolved = persisted.resolve(request), True
            if unknown is not None:
                return unknown
            if cache.key(request, last) is None:
                # Nothing is keyed by the version before the answer, and it is not a read the caches keep
                # (those go to a replica): the primary answers, its version read with the first query.
                request.stats_version_folded, request.stats_data_version = True, last
                return self._respond(request, replicas.PRIMARY, None, scope, anonymous, *args, **kwargs)
        try:
            # The data version keys the caches, read on the server the data will come from; reading
            # it also proves that server is there (a pooled connection may be dead after a restart).
            alias, request.stats_data_version = read_version(alias, scope)
        except DatabaseError:
            return database_unavailable()
        if settings.SESSION_COOKIE_NAME in request.COOKIES:
            rejected = CsrfViewMiddleware(lambda r: None).process_view(request, None, (), {})
            if rejected is not None:
                return rejected
        unknown = None if resolved else persisted.resolve(request)
        if unknown is not None:
            return unknown
        key = cache.key(request, request.stats_data_version)
        if key is None and alias != replicas.PRIMARY:  # not a read query: the primary answers it
            try:
                alias, request.stats_data_version = read_version(replicas.PRIMARY, scope)
            except DatabaseError:
                return database_unavailable()
        return self._respond(request, alias, key, scope, anonymous, *args, **kwargs)

    def _respond(self, request, alias: str, key: str | None, scope: dict, anonymous: bool, *args, **kwargs):
        """The answer (or a 304) with the version and caching headers."""
        etag = http_caching.etag(key, request.stats_data_version) if key and anonymous else None
        if etag and request.method == "GET" and http_caching.matches(request, etag):
            response = http_caching.not_modified()
        else:
            response = self._answer(request, alias, key, scope, *args, **kwargs)
            key = request.stats_cache_key  # the primary's, when a failing replica gave way
            reusable = getattr(request, "stats_reusable", False)
            etag = http_caching.etag(key, request.stats_data_version) if etag and reusable else None
        response["X-Data-Version"] = str(request.stats_data_version[0])
        http_caching.set_headers(response, request, etag, private=not anonymous)
        return response

    def _answer(self, request, alias: str, key: str | None, scope: dict, *args, **kwargs) -> HttpResponse:
        """The answer from the cache or from strawberry, on ``alias``; again on the primary if the replica failed."""
        # In front of Django, the fast path keeps anonymous answers whole (headers too): only say whether.
        verdict = scope.get("stats.response_cache")
        request.stats_cache_key = key
        body = cache.responses.get(key) if key and verdict is None else None
        if body is not None:
            response = HttpResponse(body, content_type="application/json")
            response["X-Cache"] = "hit"
            request.stats_reusable = True
            return response
        if (limited := ratelimit.refusal(request)) is not None:
            return limited  # this address spent its budget of uncached answers
        started = time.perf_counter()
        failed: Exception | None = None
        try:
            with replicas.reading_from(alias) as reading, replicas.snapshot(alias) if key else nullcontext() as one:
                if one:  # the version again, in the snapshot the answer is read from: its key
                    stamp = DataVersion.stamp(using=alias)
                    if stamp != request.stats_data_version:
                        request.stats_data_version = stamp
                        key = request.stats_cache_key = cache.key(request, stamp)
                if request.stats_version_folded:
                    response = self._folded(request, alias, *args, **kwargs)
                else:
                    response = super().dispatch(request, *args, **kwargs)
        except DatabaseError as exc:  # the snapshot's start or end, or the version: the server went away
            failed = exc
            if alias == replicas.PRIMARY:
                connections[alias].close()
                if request.stats_version_folded:  # as a failed read_version: the next requests answer at once
                    _primary_failed_at[0] = time.monotonic()
                return database_unavailable()
        ratelimit.charge(request, time.perf_counter() - started)
        failed = failed or reading.failed
        if failed and alias != replicas.PRIMARY:  # the replica went away mid-request
            replicas.mark_down(alias, failed)
            request.__dict__.pop("_stats_catalog", None)  # read there too
            try:
                _, request.stats_data_version = read_version(replicas.PRIMARY, scope)
            except DatabaseError:
                return database_unavailable()
            return self._answer(request, replicas.PRIMARY, cache.key(request, request.stats_data_version), scope)
        reusable = key and response.status_code == 200 and getattr(request, "stats_cacheable", False)
        if reusable and verdict is not None:
            verdict.update(cacheable=True, stamp=request.stats_data_version)
        elif reusable:
            cache.responses.put(key, response.content)
        if key:
            response["X-Cache"] = "miss"
        request.stats_reusable = bool(reusable)
        return response

    def _folded(self, request, alias: str, *args, **kwargs) -> HttpResponse:
        """The answer with the data version read in its first query's round trip; built again if that
        version is not the one its catalog was taken at (a write came in between)."""
        folder = FoldedVersion()
        with connections[alias].execute_wrapper(folder):
            response = super().dispatch(request, *args, **kwargs)
        if folder.failed is not None:
            raise folder.failed  # as a failed version read: 503, or the primary after a replica
        stamp = folder.stamp or DataVersion.stamp(using=alias)  # an answer without a query: read it now
        _last_stamp[alias] = stamp
        if stamp != request.stats_data_version:
            request.stats_data_version = stamp
            for built_with_the_old_catalog in ("_stats_catalog", "_stats_batches"):
                request.__dict__.pop(built_with_the_old_catalog, None)
            response = super().dispatch(request, *args, **kwargs)
        return response


@memoize
def graphiql_page(html: str) -> str:
    start = html.index("const EXAMPLE_QUERY = `") + len("const EXAMPLE_QUERY = `")
    html = html[:start] + EXAMPLE_QUERY.replace("`", "\\`") + html[html.index("`;", start) :]
    return GRAPHIQL_CDN.sub(lambda m: vendored(m[1], m[2]), html)


def vendored(attribute: str, path: str) -> str:
    """` src="/static/vendor/…" integrity="sha384-…"` for a file strawberry loads from unpkg.com."""
    found = finders.find(f"vendor/{path}")
    if found is None:
        raise FileNotFoundError(f"vendor/{path} is not vendored: run `npm ci && npm run vendor` in frontend/")
    with open(found, "rb") as file:
        digest = base64.b64encode(hashlib.sha384(file.read()).digest()).decode()
    return f' {attribute}="{static("vendor/" + path)}" integrity="sha384-{digest}"'


RETRY_AFTER_FAILURE_S = 1.0
_primary_failed_at = [0.0]  # when reading the primary last failed, per process
_last_stamp: dict[str, tuple[int, str]] = {}  # the data version this process read last, per server


def read_version(alias: str, scope: dict) -> tuple[str, tuple[int, str]]:
    """(the server, its data version stamp): a replica that fails gives way to the primary."""
    if alias == replicas.PRIMARY and scope.get("stats.data_version"):
        return alias, scope["stats.data_version"]
    try:
        _last_stamp[alias] = DataVersion.stamp(using=alias)
        return alias, _last_stamp[alias]
    except DatabaseError as exc:
        if alias != replicas.PRIMARY:
            replicas.mark_down(alias, exc)
            return read_version(replicas.PRIMARY, scope)
        connections[alias].close()  # drop it: the next request connects afresh
        _primary_failed_at[0] = time.monotonic()
        raise


graphql_view = csrf_exempt(StatsGraphQLView.as_view(schema=schema))
