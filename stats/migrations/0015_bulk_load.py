"""Cheaper bulk writes into observations, every rule kept.

- Two indexes that duplicate others go: Django's own single-column indexes of the indicator and source
  foreign keys (``observation_indicator_year`` and the fact's unique index lead with the indicator;
  ``observation_source`` is the same index as the source one). Each index costs every inserted row.
- A bulk writer that knows a new row is its fact's only figure may write it as preferred, in a
  transaction that says so (``SET LOCAL stats.preferred_given = on``): the row then enters preferred
  instead of entering unpreferred and being promoted by a second write of every row (an UPDATE that
  touches every index). Nothing is trusted: two preferred rows of one fact still break the unique index,
  and the statement trigger still ranks every fact that received an unpreferred row.
- The insert ranking only looks at facts that received an unpreferred row (and does not run when there
  is none, as after a bulk load of new facts). A fact that received a
  preferred one had no stored figure before (else the unique index refused it, as every stored fact
  has its one preferred figure), so its only other rows are unpreferred ones of the same statement,
  and those put the fact in the ranking.
- The unit check reads each indicator's lowest and highest values of the statement instead of joining
  every row with its indicator: every unit's allowed values are one interval (stats_value_fits_unit),
  so the extremes fit if and only if all values do, and the one reported is a value the statement wrote.
"""

from importlib import import_module

from django.db import migrations, models

# The ranking as 0010 wrote it, for the facts given.
preferred = import_module("stats.migrations.0010_preferred_by_database")


def function_replaced(name: str, facts: str) -> str:
    return preferred.function(name, facts).replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1)


FORWARD = (
    function_replaced(
        "stats_observation_preferred_insert", f"SELECT {preferred.KEY} FROM new_rows WHERE NOT is_preferred"
    ).replace(
        "BEGIN\n",
        "BEGIN\n  IF NOT EXISTS (SELECT 1 FROM new_rows WHERE NOT is_preferred) THEN\n    RETURN NULL;\n  END IF;\n",
        1,
    )
    + """
DROP TRIGGER stats_observation_preferred_enter ON stats_observation;
CREATE TRIGGER stats_observation_preferred_enter
  BEFORE INSERT ON stats_observation
  FOR EACH ROW WHEN (NEW.is_preferred AND current_setting('stats.preferred_given', true) IS DISTINCT FROM 'on')
  EXECUTE FUNCTION stats_observation_enters_unpreferred();

CREATE OR REPLACE FUNCTION stats_observation_units_verify() RETURNS trigger AS $$
DECLARE
  bad record;
BEGIN
  SELECT i.unit, i.code, a.lo, a.hi, a.corrected_lo, a.corrected_hi INTO bad
    FROM (SELECT indicator_id, min(value) AS lo, max(value) AS hi,
                 min(corrected_value) AS corrected_lo, max(corrected_value) AS corrected_hi
            FROM new_rows GROUP BY indicator_id) a
    JOIN stats_indicator i ON i.id = a.indicator_id
   WHERE NOT (stats_value_fits_unit(i.unit, a.lo) AND stats_value_fits_unit(i.unit, a.hi)
              AND stats_value_fits_unit(i.unit, a.corrected_lo) AND stats_value_fits_unit(i.unit, a.corrected_hi))
   LIMIT 1;
  IF NOT FOUND THEN
    RETURN NULL;
  END IF;
  IF NOT stats_value_fits_unit(bad.unit, bad.lo) OR NOT stats_value_fits_unit(bad.unit, bad.hi) THEN
    RAISE EXCEPTION 'value % does not fit the unit % of indicator %',
      CASE WHEN stats_value_fits_unit(bad.unit, bad.lo) THEN bad.hi ELSE bad.lo END, bad.unit, bad.code
      USING ERRCODE = 'check_violation', CONSTRAINT = 'observation_value_fits_unit';
  END IF;
  RAISE EXCEPTION 'corrected value % does not fit the unit % of indicator %',
    CASE WHEN stats_value_fits_unit(bad.unit, bad.corrected_lo) THEN bad.corrected_hi ELSE bad.corrected_lo END,
    bad.unit, bad.code
    USING ERRCODE = 'check_violation', CONSTRAINT = 'observation_value_fits_unit';
END $$ LANGUAGE plpgsql;
"""
)

# As 0010 and 0012 left them.
REVERSE = (
    function_replaced("stats_observation_preferred_insert", f"SELECT {preferred.KEY} FROM new_rows")
    + """
DROP TRIGGER stats_observation_preferred_enter ON stats_observation;
CREATE TRIGGER stats_observation_preferred_enter
  BEFORE INSERT ON stats_observation
  FOR EACH ROW WHEN (NEW.is_preferred) EXECUTE FUNCTION stats_observation_enters_unpreferred();

CREATE OR REPLACE FUNCTION stats_observation_units_verify() RETURNS trigger AS $$
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
"""
)


class Migration(migrations.Migration):
    dependencies = [("stats", "0014_data_version_at_commit")]

    operations = [
        migrations.AlterField(
            model_name="observation",
            name="indicator",
            field=models.ForeignKey(
                db_index=False, on_delete=models.deletion.PROTECT, related_name="observations", to="stats.indicator"
            ),
        ),
        migrations.AlterField(
            model_name="observation",
            name="source",
            field=models.ForeignKey(
                db_index=False, on_delete=models.deletion.PROTECT, related_name="observations", to="stats.source"
            ),
        ),
        migrations.RunSQL(FORWARD, REVERSE),
    ]
