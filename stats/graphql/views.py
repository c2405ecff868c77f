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
from functools import cache as memoize

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.contrib.staticfiles import finders
from django.db import DatabaseError, connection
from django.http import HttpResponse, JsonResponse
from django.middleware.csrf import CsrfViewMiddleware, get_token
from django.templatetags.static import static
from django.views.decorators.csrf import csrf_exempt
from strawberry.django.views import GraphQLView

from ncmec import csp
from stats.graphql import cache, limits, ratelimit
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
        try:
            # The data version keys the caches; reading it also proves the database is there
            # (a pooled connection may be dead after a database restart).
            request.stats_data_version = scope.get("stats.data_version") or DataVersion.stamp()
        except DatabaseError:
            connection.close()  # drop it: the next request connects afresh
            return database_unavailable()
        if settings.SESSION_COOKIE_NAME in request.COOKIES:
            rejected = CsrfViewMiddleware(lambda r: None).process_view(request, None, (), {})
            if rejected is not None:
                return rejected
        else:
            request.user = AnonymousUser()
        key = cache.key(request, request.stats_data_version)
        # In front of Django, the fast path keeps anonymous answers whole (headers too): only say whether.
        verdict = scope.get("stats.response_cache")
        body = cache.responses.get(key) if key and verdict is None else None
        if body is not None:
            response = HttpResponse(body, content_type="application/json")
        else:
            if (limited := ratelimit.refusal(request)) is not None:
                return limited
            started = time.perf_counter()
            response = super().dispatch(request, *args, **kwargs)
            ratelimit.charge(request, time.perf_counter() - started)
            reusable = key and response.status_code == 200 and getattr(request, "stats_cacheable", False)
            if reusable and verdict is not None:
                verdict["cacheable"] = True
            elif reusable:
                cache.responses.put(key, response.content)
        response["X-Data-Version"] = str(request.stats_data_version[0])
        if key:
            response["X-Cache"] = "hit" if body is not None else "miss"
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


graphql_view = csrf_exempt(StatsGraphQLView.as_view(schema=schema))
