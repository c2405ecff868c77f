from django.contrib import admin
from django.urls import include, path

from ncmec import health
from stats.graphql.views import graphql_view

urlpatterns = [
    path("admin/", admin.site.urls),
    path("graphql", graphql_view, name="graphql"),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("", include("stats.explorer.urls")),
]
