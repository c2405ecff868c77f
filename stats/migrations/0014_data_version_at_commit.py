"""A long write can bump the data version at commit instead of at its first statement.

The version row is locked by whoever bumped it until that transaction ends: an import bumping at
its first COPY held it for minutes, and every correction waited behind it (or deadlocked with it).
A transaction that sets ``stats.data_version_at_commit`` (imports, the published reports: see
stats/services/locking.py) queues one bump instead, applied by a deferred constraint trigger at
commit; the row is then locked only for the commit. Other writes bump at once as before, so a
reader in the writer's own transaction sees the new version.
"""

from django.db import migrations

FORWARD = """
CREATE TABLE stats_dataversion_pending (id bigserial PRIMARY KEY);

CREATE FUNCTION stats_apply_data_version() RETURNS trigger AS $$
BEGIN
  INSERT INTO stats_dataversion (id, value, changed_at) VALUES (1, 2, now())
  ON CONFLICT (id) DO UPDATE SET value = stats_dataversion.value + 1, changed_at = now();
  DELETE FROM stats_dataversion_pending WHERE id = NEW.id;
  PERFORM set_config('stats.data_version_pending', 'off', true);  -- later writes queue again
  RETURN NULL;
END $$ LANGUAGE plpgsql;

CREATE CONSTRAINT TRIGGER stats_apply_data_version AFTER INSERT ON stats_dataversion_pending
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION stats_apply_data_version();

CREATE OR REPLACE FUNCTION stats_bump_data_version() RETURNS trigger AS $$
BEGIN
  IF current_setting('stats.data_version_at_commit', true) = 'on' THEN
    IF current_setting('stats.data_version_pending', true) IS DISTINCT FROM 'on' THEN
      PERFORM set_config('stats.data_version_pending', 'on', true);
      INSERT INTO stats_dataversion_pending DEFAULT VALUES;
    END IF;
    RETURN NULL;
  END IF;
  INSERT INTO stats_dataversion (id, value, changed_at) VALUES (1, 2, now())
  ON CONFLICT (id) DO UPDATE SET value = stats_dataversion.value + 1, changed_at = now();
  RETURN NULL;
END $$ LANGUAGE plpgsql;
"""

REVERSE = """
CREATE OR REPLACE FUNCTION stats_bump_data_version() RETURNS trigger AS $$
BEGIN
  INSERT INTO stats_dataversion (id, value, changed_at) VALUES (1, 2, now())
  ON CONFLICT (id) DO UPDATE SET value = stats_dataversion.value + 1, changed_at = now();
  RETURN NULL;
END $$ LANGUAGE plpgsql;
DROP TRIGGER stats_apply_data_version ON stats_dataversion_pending;
DROP FUNCTION stats_apply_data_version();
DROP TABLE stats_dataversion_pending;
"""


class Migration(migrations.Migration):
    dependencies = [("stats", "0013_import_reverted")]

    operations = [migrations.RunSQL(FORWARD, REVERSE)]
