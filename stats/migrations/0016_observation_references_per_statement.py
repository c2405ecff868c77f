"""An observation's indicator and source are checked once per statement, not once per row.

The two foreign keys of stats_observation were checked row by row at commit (Django makes them
deferred): a million-row import queued two million checks, about half of its time. The same rule,
set-based: statement triggers with transition tables check that every indicator and source the
statement wrote exists, after locking them as a foreign key does (FOR KEY SHARE, once per distinct
id, so a concurrent delete waits for the writer and then sees its rows); row triggers on the
indicator and source tables refuse deleting (or renumbering) one that observations still name, and a
TRUNCATE of them is refused after the fact when observations are left (truncating both at once, as a
foreign key allows, passes: AFTER TRUNCATE triggers run once every table of the statement is empty).
Same error code and constraint names as the foreign keys they replace.
"""

from django.db import migrations, models

FORWARD = """
CREATE FUNCTION stats_observation_references_verify() RETURNS trigger AS $$
DECLARE
  missing bigint;
BEGIN
  PERFORM 1 FROM stats_indicator WHERE id IN (SELECT DISTINCT indicator_id FROM new_rows) FOR KEY SHARE;
  PERFORM 1 FROM stats_source WHERE id IN (SELECT DISTINCT source_id FROM new_rows) FOR KEY SHARE;
  SELECT n.indicator_id INTO missing FROM (SELECT DISTINCT indicator_id FROM new_rows) n
   WHERE NOT EXISTS (SELECT 1 FROM stats_indicator i WHERE i.id = n.indicator_id) LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'insert or update on table "stats_observation" violates foreign key constraint '
                    '"stats_observation_indicator_id_fk": Key (indicator_id)=(%) is not present in table '
                    '"stats_indicator".', missing
      USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'stats_observation_indicator_id_fk';
  END IF;
  SELECT n.source_id INTO missing FROM (SELECT DISTINCT source_id FROM new_rows) n
   WHERE NOT EXISTS (SELECT 1 FROM stats_source s WHERE s.id = n.source_id) LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'insert or update on table "stats_observation" violates foreign key constraint '
                    '"stats_observation_source_id_fk": Key (source_id)=(%) is not present in table '
                    '"stats_source".', missing
      USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'stats_observation_source_id_fk';
  END IF;
  RETURN NULL;
END $$ LANGUAGE plpgsql;

CREATE TRIGGER stats_observation_references_insert
  AFTER INSERT ON stats_observation REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION stats_observation_references_verify();
CREATE TRIGGER stats_observation_references_update
  AFTER UPDATE ON stats_observation REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION stats_observation_references_verify();

-- TG_ARGV[0]: the observation column that names the row (indicator_id or source_id).
CREATE FUNCTION stats_observation_referenced_keep() RETURNS trigger AS $$
DECLARE
  used boolean;
BEGIN
  IF TG_OP = 'TRUNCATE' THEN
    used := EXISTS (SELECT 1 FROM stats_observation);
  ELSIF TG_OP = 'UPDATE' AND NEW.id = OLD.id THEN
    used := false;
  ELSE
    EXECUTE format('SELECT EXISTS (SELECT 1 FROM stats_observation WHERE %I = $1)', TG_ARGV[0]) INTO used USING OLD.id;
  END IF;
  IF used THEN
    RAISE EXCEPTION 'update or delete on table "%" violates foreign key constraint "stats_observation_%_fk" on '
                    'table "stats_observation": observations still name it', TG_TABLE_NAME, TG_ARGV[0]
      USING ERRCODE = 'foreign_key_violation', CONSTRAINT = format('stats_observation_%s_fk', TG_ARGV[0]);
  END IF;
  IF TG_OP = 'DELETE' THEN
    RETURN OLD;
  END IF;
  RETURN NEW;  -- null for TRUNCATE (a statement trigger)
END $$ LANGUAGE plpgsql;

CREATE TRIGGER stats_observation_referenced_keep
  BEFORE DELETE OR UPDATE OF id ON stats_indicator
  FOR EACH ROW EXECUTE FUNCTION stats_observation_referenced_keep('indicator_id');
CREATE TRIGGER stats_observation_referenced_truncate
  AFTER TRUNCATE ON stats_indicator
  FOR EACH STATEMENT EXECUTE FUNCTION stats_observation_referenced_keep('indicator_id');
CREATE TRIGGER stats_observation_referenced_keep
  BEFORE DELETE OR UPDATE OF id ON stats_source
  FOR EACH ROW EXECUTE FUNCTION stats_observation_referenced_keep('source_id');
CREATE TRIGGER stats_observation_referenced_truncate
  AFTER TRUNCATE ON stats_source
  FOR EACH STATEMENT EXECUTE FUNCTION stats_observation_referenced_keep('source_id');
"""

REVERSE = """
DROP TRIGGER stats_observation_referenced_truncate ON stats_source;
DROP TRIGGER stats_observation_referenced_keep ON stats_source;
DROP TRIGGER stats_observation_referenced_truncate ON stats_indicator;
DROP TRIGGER stats_observation_referenced_keep ON stats_indicator;
DROP FUNCTION stats_observation_referenced_keep();
DROP TRIGGER stats_observation_references_update ON stats_observation;
DROP TRIGGER stats_observation_references_insert ON stats_observation;
DROP FUNCTION stats_observation_references_verify();
"""


class Migration(migrations.Migration):
    dependencies = [("stats", "0015_bulk_load")]

    operations = [
        migrations.RunSQL(FORWARD, REVERSE),
        migrations.AlterField(
            model_name="observation",
            name="indicator",
            field=models.ForeignKey(
                db_constraint=False, db_index=False, on_delete=models.deletion.PROTECT,
                related_name="observations", to="stats.indicator",
            ),
        ),  # fmt: skip
        migrations.AlterField(
            model_name="observation",
            name="source",
            field=models.ForeignKey(
                db_constraint=False, db_index=False, on_delete=models.deletion.PROTECT,
                related_name="observations", to="stats.source",
            ),
        ),  # fmt: skip
    ]
