"""The HTTP endpoint: GraphiQL in a browser, JSON for apps.

CSRF: requests that carry a session cookie are authenticated and must pass Django's CSRF check
(GraphiQL sends the token from the csrftoken cookie). Requests without one are anonymous and
read-only, so a forged cross-site request gains nothing; they work without a token, which lets
apps and scripts POST plain JSON. This is not the blanket csrf_exempt of CVE-2024-47082.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.db import DatabaseError, connection
from django.http import JsonResponse
from django.middleware.csrf import CsrfViewMiddleware, get_token
from django.views.decorators.csrf import csrf_exempt
from strawberry.django.views import GraphQLView

from stats.graphql.schema import schema

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
        return super().render_graphql_ide(request)

    @property
    def graphql_ide_html(self) -> str:
        """Strawberry's GraphiQL page, opening with our example query."""
        html = super().graphql_ide_html
        start = html.index("const EXAMPLE_QUERY = `") + len("const EXAMPLE_QUERY = `")
        return html[:start] + EXAMPLE_QUERY.replace("`", "\\`") + html[html.index("`;", start) :]

    def dispatch(self, request, *args, **kwargs):
        try:
            with connection.cursor() as cursor:  # a pooled connection may be dead after a database restart
                cursor.execute("SELECT 1")
        except DatabaseError:
            connection.close()  # drop it: the next request connects afresh
            return database_unavailable()
        if settings.SESSION_COOKIE_NAME in request.COOKIES:
            rejected = CsrfViewMiddleware(lambda r: None).process_view(request, None, (), {})
            if rejected is not None:
                return rejected
        else:
            request.user = AnonymousUser()
        return super().dispatch(request, *args, **kwargs)


graphql_view = csrf_exempt(StatsGraphQLView.as_view(schema=schema))
