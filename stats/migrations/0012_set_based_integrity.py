"""The observation rules checked once per statement, so COPY and bulk writes check a million rows in one pass.

Before, two plpgsql triggers ran for every row (breakdown and unit), about 5,000 rows/s. Now:

- Units: AFTER INSERT and AFTER UPDATE statement triggers join the new rows (transition table) with
  their indicators and refuse the statement if any value does not fit the unit.
- Breakdown: a writer that leaves ``member_order`` empty (the ORM, raw SQL, fixtures) still gets the
  row trigger that sorts ``member_ids`` and fills ``dimension_ids`` and ``member_order``; an update
  runs it only when one of those columns really changes. A bulk writer that supplies the derived
  columns (the import's merge computes them with ``stats_breakdown``) skips it, and an AFTER INSERT
  statement trigger checks every inserted breakdown at once: members exist, sorted, once each, one
  per dimension, derived columns exactly what the row trigger would have computed.

Same error codes, constraint names and messages as the row triggers they replace.
"""

from django.db import migrations

FORWARD = """
-- What the row trigger computes for a breakdown, as one set-returning function for set-based use.
CREATE FUNCTION stats_breakdown(member_ids bigint[],
                                OUT found integer, OUT distinct_dims integer, OUT ids bigint[],
                                OUT dimension_ids bigint[], OUT member_order text) AS $$
  SELECT count(*)::integer, count(DISTINCT m.dimension_id)::integer,
         coalesce(array_agg(m.id ORDER BY m.id), '{}'),
         coalesce(array_agg(m.dimension_id ORDER BY m.dimension_id), '{}'),
         coalesce(string_agg(stats_member_sort_key(d."order", d.code, m."order", m.id), ''
                             ORDER BY stats_member_sort_key(d."order", d.code, m."order", m.id) COLLATE "C"), '')
    FROM stats_member m JOIN stats_dimension d ON d.id = m.dimension_id
   WHERE m.id = ANY (member_ids)
$$ LANGUAGE sql STABLE;

CREATE FUNCTION stats_observation_breakdowns_verify() RETURNS trigger AS $$
DECLARE
  bad record;
BEGIN
  SELECT n.member_ids, n.dimension_ids AS given_dims, n.member_order AS given_order, b.*
    INTO bad
    FROM (SELECT DISTINCT member_ids, dimension_ids, member_order FROM new_rows WHERE member_order <> '') n
    CROSS JOIN LATERAL stats_breakdown(n.member_ids) b
   WHERE NOT (b.found = cardinality(n.member_ids) AND b.ids = n.member_ids AND b.distinct_dims = b.found
              AND b.dimension_ids = n.dimension_ids AND b.member_order = n.member_order)
   LIMIT 1;
  IF NOT FOUND THEN
    RETURN NULL;
  END IF;
  IF cardinality(bad.member_ids) <> (SELECT count(DISTINCT m) FROM unnest(bad.member_ids) AS m) THEN
    RAISE EXCEPTION 'observation breakdown % names a member twice', bad.member_ids
      USING ERRCODE = 'check_violation', CONSTRAINT = 'observation_members_once';
  END IF;
  IF bad.found <> cardinality(bad.member_ids) THEN
    RAISE EXCEPTION 'observation breakdown % names a member that does not exist', bad.member_ids
      USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'observation_members_exist';
  END IF;
  IF bad.distinct_dims <> bad.found THEN
    RAISE EXCEPTION 'observation breakdown % has two members of one dimension', bad.member_ids
      USING ERRCODE = 'check_violation', CONSTRAINT = 'observation_one_member_per_dimension';
  END IF;
  RAISE EXCEPTION 'observation breakdown % is not sorted or its dimension_ids/member_order (%, %) are not the '
                  'ones it implies (%, %): leave them empty and the database fills them',
                  bad.member_ids, bad.given_dims, bad.given_order, bad.dimension_ids, bad.member_order
    USING ERRCODE = 'check_violation', CONSTRAINT = 'observation_breakdown_derived';
END $$ LANGUAGE plpgsql;

CREATE FUNCTION stats_observation_units_verify() RETURNS trigger AS $$
DECLARE
  bad record;
BEGIN
  SELECT n.value, n.corrected_value, i.unit, i.code INTO bad
    FROM new_rows n JOIN stats_indicator i ON i.id = n.indicator_id
   WHERE NOT (stats_value_fits_unit(i.unit, n.value) AND stats_value_fits_unit(i.unit, n.corrected_value))
   LIMIT 1;
  IF NOT FOUND THEN
    RETURN NULL;
  END IF;
  IF NOT stats_value_fits_unit(bad.unit, bad.value) THEN
    RAISE EXCEPTION 'value % does not fit the unit % of indicator %', bad.value, bad.unit, bad.code
      USING ERRCODE = 'check_violation', CONSTRAINT = 'observation_value_fits_unit';
  END IF;
  RAISE EXCEPTION 'corrected value % does not fit the unit % of indicator %', bad.corrected_value, bad.unit, bad.code
    USING ERRCODE = 'check_violation', CONSTRAINT = 'observation_value_fits_unit';
END $$ LANGUAGE plpgsql;

DROP TRIGGER stats_observation_unit_check ON stats_observation;
DROP FUNCTION stats_observation_unit_check();
CREATE TRIGGER stats_observation_units_insert
  AFTER INSERT ON stats_observation REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION stats_observation_units_verify();
CREATE TRIGGER stats_observation_units_update
  AFTER UPDATE ON stats_observation REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION stats_observation_units_verify();

DROP TRIGGER stats_observation_members_check ON stats_observation;
CREATE TRIGGER stats_observation_members_check
  BEFORE INSERT ON stats_observation
  FOR EACH ROW WHEN (NEW.member_order IS NULL OR NEW.member_order = '' OR NEW.member_ids IS NULL)
  EXECUTE FUNCTION stats_observation_members_check();
CREATE TRIGGER stats_observation_members_recheck
  BEFORE UPDATE OF member_ids, dimension_ids, member_order ON stats_observation
  FOR EACH ROW WHEN (NEW.member_ids IS DISTINCT FROM OLD.member_ids
                     OR NEW.dimension_ids IS DISTINCT FROM OLD.dimension_ids
                     OR NEW.member_order IS DISTINCT FROM OLD.member_order)
  EXECUTE FUNCTION stats_observation_members_check();
CREATE TRIGGER stats_observation_breakdowns_insert
  AFTER INSERT ON stats_observation REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION stats_observation_breakdowns_verify();
"""

# The row triggers as 0002 and 0009 left them.
REVERSE = """
DROP TRIGGER stats_observation_breakdowns_insert ON stats_observation;
DROP TRIGGER stats_observation_members_recheck ON stats_observation;
DROP TRIGGER stats_observation_members_check ON stats_observation;
CREATE TRIGGER stats_observation_members_check
  BEFORE INSERT OR UPDATE OF member_ids, dimension_ids, member_order ON stats_observation
  FOR EACH ROW EXECUTE FUNCTION stats_observation_members_check();

DROP TRIGGER stats_observation_units_update ON stats_observation;
DROP TRIGGER stats_observation_units_insert ON stats_observation;
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

DROP FUNCTION stats_observation_units_verify();
DROP FUNCTION stats_observation_breakdowns_verify();
DROP FUNCTION stats_breakdown(bigint[]);
"""


class Migration(migrations.Migration):
    dependencies = [("stats", "0011_import_preview")]

    operations = [migrations.RunSQL(FORWARD, REVERSE)]
