"""The source index also lists the indicator: one source's figures of one indicator are one range of it.

Migration 0017 moved the source to the end of the fact's unique index, so a lookup by source and
indicator (the whole-table export reads source by source, indicator by indicator) no longer had an
index of its own; this one serves it, and every read by source as before, at the same write cost.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("stats", "0019_import_preview_parts"),
    ]

    operations = [
        migrations.RemoveIndex(model_name="observation", name="observation_source"),
        migrations.AddIndex(
            model_name="observation",
            index=models.Index(fields=["source", "indicator"], name="observation_source_indicator"),
        ),
    ]
