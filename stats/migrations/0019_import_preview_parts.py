"""Previews' files in parts (ImportPreviewPart): a web process stores and reads one part at a time.

A preview waiting for its confirm when this runs keeps its file, as its one part.
"""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("stats", "0018_observation_references_one_pass"),
    ]

    operations = [
        migrations.AddField(
            model_name="importpreview",
            name="size",
            field=models.BigIntegerField(default=0, help_text="The file's size in bytes (at most IMPORT_MAX_BYTES)."),
        ),
        migrations.CreateModel(
            name="ImportPreviewPart",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("number", models.PositiveIntegerField(help_text="The part's place in the file, from 0.")),
                ("data", models.BinaryField(help_text="At most PART_BYTES of the file.")),
                (
                    "preview",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="parts", to="stats.importpreview"
                    ),
                ),
            ],
            options={
                "constraints": [models.UniqueConstraint(fields=("preview", "number"), name="import_preview_part_once")],
            },
        ),
        migrations.RunSQL(
            sql="""
                UPDATE stats_importpreview SET size = length(data);
                INSERT INTO stats_importpreviewpart (preview_id, number, data)
                SELECT id, 0, data FROM stats_importpreview WHERE length(data) > 0;
            """,
            reverse_sql="""
                UPDATE stats_importpreview p SET data = coalesce(
                    (SELECT string_agg(data, ''::bytea ORDER BY number) FROM stats_importpreviewpart
                      WHERE preview_id = p.id), ''::bytea);
            """,
        ),
        migrations.RemoveField(
            model_name="importpreview",
            name="data",
        ),
    ]
