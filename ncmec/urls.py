from django.contrib import admin
from django.urls import include, path

from stats.graphql.views import graphql_view

urlpatterns = [
    path("admin/", admin.site.urls),
    path("graphql", graphql_view, name="graphql"),
    path("", include("stats.explorer.urls")),
]
