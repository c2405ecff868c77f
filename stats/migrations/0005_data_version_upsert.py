"""The data-version trigger recreates its row when it is missing (e.g. after a TRUNCATE/flush)."""

from django.db import migrations

UPSERT = """
CREATE OR REPLACE FUNCTION stats_bump_data_version() RETURNS trigger AS $$
BEGIN
  INSERT INTO stats_dataversion (id, value, changed_at) VALUES (1, 2, now())
  ON CONFLICT (id) DO UPDATE SET value = stats_dataversion.value + 1, changed_at = now();
  RETURN NULL;
END $$ LANGUAGE plpgsql;
"""

UPDATE_ONLY = """
CREATE OR REPLACE FUNCTION stats_bump_data_version() RETURNS trigger AS $$
BEGIN
  UPDATE stats_dataversion SET value = value + 1, changed_at = now() WHERE id = 1;
  RETURN NULL;
END $$ LANGUAGE plpgsql;
"""


class Migration(migrations.Migration):
    dependencies = [("stats", "0004_observation_db_defaults")]

    operations = [migrations.RunSQL(UPSERT, UPDATE_ONLY)]
