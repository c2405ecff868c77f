from django.urls import path

from stats.explorer import downloads, views

app_name = "explorer"
urlpatterns = [
    path("", views.home, name="home"),
    path("search", views.search, name="search"),
    path("indicators/<str:code>/", views.indicator, name="indicator"),
    path("indicators/<str:code>.csv", downloads.indicator_csv, name="indicator-csv"),
    path("sources/<slug:slug>/", views.source, name="source"),
    path("sources/<slug:slug>.csv", downloads.source_csv, name="source-csv"),
    path("figures/<int:pk>/", views.figure, name="figure"),
    path("figures/<int:pk>.csv", downloads.figure_csv, name="figure-csv"),
    path("downloads/", views.downloads_page, name="downloads"),
    path("downloads/datapackage.json", downloads.datapackage, name="datapackage"),
    path("downloads/<str:name>.<str:fmt>", downloads.table_file, name="download"),
]
