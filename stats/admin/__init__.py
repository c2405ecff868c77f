"""The staff admin: browse and correct figures, import next year's tables, see every change.

Admin classes are declarations; every write goes through stats.services (imports, edits,
reverts), so the admin obeys the same validation and audit trail as the CLI and GraphQL.
One module per concern: ``catalog`` (topics, sources, indicators, dimensions, members),
``observations`` (figures: edit, history, revert, export, data quality), ``imports`` (upload,
preview, confirm; the import records).
"""

from django.contrib import admin

from stats.admin import catalog, imports, observations  # noqa: F401  (they register the admin classes)

admin.site.site_header = "NCMEC statistics warehouse"
admin.site.site_title = "NCMEC statistics"
admin.site.index_title = "Data staff"
