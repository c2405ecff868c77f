"""Integrity rules that Django's constraints cannot express, as PostgreSQL triggers.

- An observation's breakdown (member_ids) names existing members, at most one per dimension;
  the trigger sorts it and fills dimension_ids. Members in use cannot be deleted or moved to
  another dimension (a foreign key for array elements).
- Values obey the indicator's unit: counts are not negative, percentages lie in 0..100,
  "1 in N" is at least 1. Changing an indicator's unit re-checks its observations.
- Every write to the warehouse bumps DataVersion in the same transaction.
"""

from django.db import migrations

MEMBERS_CHECK = """
CREATE FUNCTION stats_observation_members_check() RETURNS trigger AS $$
DECLARE
  found integer;
  dims bigint[];
  distinct_dims integer;
BEGIN
  IF NEW.member_ids IS NULL THEN
    NEW.member_ids := '{}';
  END IF;
  IF cardinality(NEW.member_ids) <> (SELECT count(DISTINCT m) FROM unnest(NEW.member_ids) AS m) THEN
    RAISE EXCEPTION 'observation breakdown % names a member twice', NEW.member_ids
      USING ERRCODE = 'check_violation', CONSTRAINT = 'observation_members_once';
  END IF;
  SELECT coalesce(array_agg(m ORDER BY m), '{}') INTO NEW.member_ids FROM unnest(NEW.member_ids) AS m;
  SELECT count(*), coalesce(array_agg(dimension_id ORDER BY dimension_id), '{}'),
         count(DISTINCT dimension_id)
    INTO found, dims, distinct_dims
    FROM stats_member WHERE id = ANY (NEW.member_ids);
  IF found <> cardinality(NEW.member_ids) THEN
    RAISE EXCEPTION 'observation breakdown % names a member that does not exist', NEW.member_ids
      USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'observation_members_exist';
  END IF;
  IF distinct_dims <> found THEN
    RAISE EXCEPTION 'observation breakdown % has two members of one dimension', NEW.member_ids
      USING ERRCODE = 'check_violation', CONSTRAINT = 'observation_one_member_per_dimension';
  END IF;
  NEW.dimension_ids := dims;
  RETURN NEW;
END $$ LANGUAGE plpgsql;

CREATE TRIGGER stats_observation_members_check
  BEFORE INSERT OR UPDATE OF member_ids, dimension_ids ON stats_observation
  FOR EACH ROW EXECUTE FUNCTION stats_observation_members_check();

CREATE FUNCTION stats_member_in_use_check() RETURNS trigger AS $$
BEGIN
  IF TG_OP = 'UPDATE' AND NEW.dimension_id = OLD.dimension_id THEN
    RETURN NEW;
  END IF;
  IF EXISTS (SELECT 1 FROM stats_observation WHERE member_ids @> ARRAY[OLD.id]::bigint[]) THEN
    RAISE EXCEPTION 'member % (%) is used by observations', OLD.code, OLD.id
      USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'observation_members_exist';
  END IF;
  IF TG_OP = 'DELETE' THEN
    RETURN OLD;
  END IF;
  RETURN NEW;
END $$ LANGUAGE plpgsql;

CREATE TRIGGER stats_member_in_use_check
  BEFORE DELETE OR UPDATE OF dimension_id ON stats_member
  FOR EACH ROW EXECUTE FUNCTION stats_member_in_use_check();
"""

UNIT_CHECK = """
CREATE FUNCTION stats_value_fits_unit(unit text, v numeric) RETURNS boolean AS $$
  SELECT v IS NULL OR CASE unit
    WHEN 'count' THEN v >= 0
    WHEN 'percent' THEN v BETWEEN 0 AND 100
    WHEN 'percent_change' THEN v >= -100
    WHEN 'one_in_n' THEN v >= 1
    WHEN 'multiple' THEN v > 0
    ELSE false END
$$ LANGUAGE sql IMMUTABLE;

CREATE FUNCTION stats_observation_unit_check() RETURNS trigger AS $$
DECLARE
  u text;
  c text;
BEGIN
  SELECT unit, code INTO u, c FROM stats_indicator WHERE id = NEW.indicator_id;
  IF NOT stats_value_fits_unit(u, NEW.value) THEN
    RAISE EXCEPTION 'value % does not fit the unit % of indicator %', NEW.value, u, c
      USING ERRCODE = 'check_violation', CONSTRAINT = 'observation_value_fits_unit';
  END IF;
  IF NOT stats_value_fits_unit(u, NEW.corrected_value) THEN
    RAISE EXCEPTION 'corrected value % does not fit the unit % of indicator %', NEW.corrected_value, u, c
      USING ERRCODE = 'check_violation', CONSTRAINT = 'observation_value_fits_unit';
  END IF;
  RETURN NEW;
END $$ LANGUAGE plpgsql;

CREATE TRIGGER stats_observation_unit_check
  BEFORE INSERT OR UPDATE OF value, corrected_value, indicator_id ON stats_observation
  FOR EACH ROW EXECUTE FUNCTION stats_observation_unit_check();

CREATE FUNCTION stats_indicator_unit_check() RETURNS trigger AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM stats_observation o WHERE o.indicator_id = NEW.id
             AND NOT (stats_value_fits_unit(NEW.unit, o.value)
                      AND stats_value_fits_unit(NEW.unit, o.corrected_value))) THEN
    RAISE EXCEPTION 'indicator % has observations that do not fit the unit %', NEW.code, NEW.unit
      USING ERRCODE = 'check_violation', CONSTRAINT = 'observation_value_fits_unit';
  END IF;
  RETURN NEW;
END $$ LANGUAGE plpgsql;

CREATE TRIGGER stats_indicator_unit_check
  AFTER UPDATE OF unit ON stats_indicator
  FOR EACH ROW EXECUTE FUNCTION stats_indicator_unit_check();
"""

DATA_VERSION_TABLES = [
    "stats_observation", "stats_restatement", "stats_indicator", "stats_topic", "stats_source",
    "stats_dimension", "stats_member", "stats_memberalias",
]

DATA_VERSION = """
INSERT INTO stats_dataversion (id, value, changed_at) VALUES (1, 1, now());

CREATE FUNCTION stats_bump_data_version() RETURNS trigger AS $$
BEGIN
  UPDATE stats_dataversion SET value = value + 1, changed_at = now() WHERE id = 1;
  RETURN NULL;
END $$ LANGUAGE plpgsql;
""" + "".join(
    f"""
CREATE TRIGGER stats_bump_data_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table}
  FOR EACH STATEMENT EXECUTE FUNCTION stats_bump_data_version();
"""
    for table in DATA_VERSION_TABLES
)

REVERSE = (
    "".join(f"DROP TRIGGER IF EXISTS stats_bump_data_version ON {t};" for t in DATA_VERSION_TABLES)
    + """
DROP FUNCTION IF EXISTS stats_bump_data_version();
DELETE FROM stats_dataversion;
DROP TRIGGER IF EXISTS stats_indicator_unit_check ON stats_indicator;
DROP FUNCTION IF EXISTS stats_indicator_unit_check();
DROP TRIGGER IF EXISTS stats_observation_unit_check ON stats_observation;
DROP FUNCTION IF EXISTS stats_observation_unit_check();
DROP FUNCTION IF EXISTS stats_value_fits_unit(text, numeric);
DROP TRIGGER IF EXISTS stats_member_in_use_check ON stats_member;
DROP FUNCTION IF EXISTS stats_member_in_use_check();
DROP TRIGGER IF EXISTS stats_observation_members_check ON stats_observation;
DROP FUNCTION IF EXISTS stats_observation_members_check();
"""
)


class Migration(migrations.Migration):
    dependencies = [("stats", "0001_initial")]

    operations = [
        migrations.RunSQL(MEMBERS_CHECK + UNIT_CHECK + DATA_VERSION, REVERSE),
    ]
