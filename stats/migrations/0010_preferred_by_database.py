"""is_preferred is kept by the database: exactly one preferred figure per fact, whatever writes.

A fact is (indicator, year, period, since, breakdown). Its preferred observation is the one plain
queries return (rule in docs/data.md): the impact report of the fact's own year, then any impact
report, then the latest edition, then the lowest source id.

Statement-level triggers with transition tables recompute only the facts a statement touched:
observations inserted, deleted, or updated in their key, source or is_preferred; sources whose
kind or edition changed. New rows enter as not preferred (a row trigger, which fires only when a
writer asks for ``true``, demotes them first so the unique index never sees two) and the
statement trigger promotes the right one. The partial unique index holds the rule.
"""

from django.db import migrations, models

KEY = "indicator_id, year, period, since, member_ids"

# Demote first, then promote: the unique index is checked row by row, so a swap in one
# statement could meet two preferred rows halfway. The ranking runs as dynamic SQL, planned for
# each statement with its transition table's real size: a plan cached for a one-row edit (a
# nested loop) would go quadratic on a 5,000-row insert.
PREFER = """
  EXECUTE $ranking$
  WITH fact AS ({facts}),
  ranked AS (
    SELECT o.id, o.is_preferred, row_number() OVER (
             PARTITION BY o.indicator_id, o.year, o.period, o.since, o.member_ids
             ORDER BY CASE WHEN s.kind = 'impact_report' AND s.edition = o.year THEN 0
                           WHEN s.kind = 'impact_report' THEN 1 ELSE 2 END,
                      s.edition DESC, s.id) = 1 AS best
    FROM (SELECT DISTINCT * FROM fact) f
    JOIN stats_observation o
      ON o.indicator_id = f.indicator_id AND o.year = f.year AND o.period = f.period
     AND o.since IS NOT DISTINCT FROM f.since AND o.member_ids = f.member_ids
    JOIN stats_source s ON s.id = o.source_id
  )
  SELECT coalesce(array_agg(id) FILTER (WHERE is_preferred AND NOT best), '{{}}'),
         coalesce(array_agg(id) FILTER (WHERE best AND NOT is_preferred), '{{}}')
    FROM ranked
  $ranking$ INTO demote, promote;
  IF cardinality(demote) > 0 THEN
    UPDATE stats_observation SET is_preferred = false WHERE id = ANY (demote);
  END IF;
  IF cardinality(promote) > 0 THEN
    UPDATE stats_observation SET is_preferred = true WHERE id = ANY (promote);
  END IF;
"""


def function(name: str, facts: str) -> str:
    return f"""
CREATE FUNCTION {name}() RETURNS trigger AS $$
DECLARE
  demote bigint[];
  promote bigint[];
BEGIN
{PREFER.format(facts=facts)}
  RETURN NULL;
END $$ LANGUAGE plpgsql;
"""


OBSERVATION_KEY_CHANGED = f"""
  SELECT o.id FROM old_rows o JOIN new_rows n ON n.id = o.id
  WHERE (o.indicator_id, o.year, o.period, o.since, o.member_ids, o.source_id)
        IS DISTINCT FROM (n.indicator_id, n.year, n.period, n.since, n.member_ids, n.source_id)
     -- a writer setting is_preferred itself (our own promotions run one trigger level deeper)
     OR (o.is_preferred IS DISTINCT FROM n.is_preferred AND pg_trigger_depth() = 1)
"""

FORWARD = (
    function("stats_observation_preferred_insert", f"SELECT {KEY} FROM new_rows")
    + function("stats_observation_preferred_delete", f"SELECT {KEY} FROM old_rows")
    + function(
        "stats_observation_preferred_update",
        f"""SELECT {KEY} FROM old_rows WHERE id IN ({OBSERVATION_KEY_CHANGED})
            UNION ALL SELECT {KEY} FROM new_rows WHERE id IN ({OBSERVATION_KEY_CHANGED})""",
    )
    + function(
        "stats_source_preferred_update",
        f"""SELECT {KEY} FROM stats_observation WHERE source_id IN (
              SELECT n.id FROM old_rows o JOIN new_rows n ON n.id = o.id
              WHERE (o.kind, o.edition) IS DISTINCT FROM (n.kind, n.edition))""",
    )
    + """
CREATE FUNCTION stats_observation_enters_unpreferred() RETURNS trigger AS $$
BEGIN
  NEW.is_preferred := false;
  RETURN NEW;
END $$ LANGUAGE plpgsql;

-- Fires only for rows written as preferred (COPY and the ORM write false): cheap for bulk loads.
CREATE TRIGGER stats_observation_preferred_enter
  BEFORE INSERT ON stats_observation
  FOR EACH ROW WHEN (NEW.is_preferred) EXECUTE FUNCTION stats_observation_enters_unpreferred();
CREATE TRIGGER stats_observation_preferred_move
  BEFORE UPDATE OF indicator_id, year, period, since, member_ids ON stats_observation
  FOR EACH ROW WHEN (NEW.is_preferred AND (OLD.indicator_id, OLD.year, OLD.period, OLD.since, OLD.member_ids)
                     IS DISTINCT FROM (NEW.indicator_id, NEW.year, NEW.period, NEW.since, NEW.member_ids))
  EXECUTE FUNCTION stats_observation_enters_unpreferred();

CREATE TRIGGER stats_observation_preferred_insert AFTER INSERT ON stats_observation
  REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION stats_observation_preferred_insert();
CREATE TRIGGER stats_observation_preferred_delete AFTER DELETE ON stats_observation
  REFERENCING OLD TABLE AS old_rows
  FOR EACH STATEMENT EXECUTE FUNCTION stats_observation_preferred_delete();
CREATE TRIGGER stats_observation_preferred_update AFTER UPDATE ON stats_observation
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION stats_observation_preferred_update();
CREATE TRIGGER stats_source_preferred_update AFTER UPDATE ON stats_source
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION stats_source_preferred_update();
"""
)

# Every fact once, as the triggers would: the stored flags were kept in Python until now.
RECOMPUTE = f"""
DO $$
DECLARE
  demote bigint[];
  promote bigint[];
BEGIN
{PREFER.format(facts=f"SELECT {KEY} FROM stats_observation")}
END $$;
"""

REVERSE = """
DROP TRIGGER stats_source_preferred_update ON stats_source;
DROP TRIGGER stats_observation_preferred_update ON stats_observation;
DROP TRIGGER stats_observation_preferred_delete ON stats_observation;
DROP TRIGGER stats_observation_preferred_insert ON stats_observation;
DROP TRIGGER stats_observation_preferred_move ON stats_observation;
DROP TRIGGER stats_observation_preferred_enter ON stats_observation;
DROP FUNCTION stats_observation_enters_unpreferred();
DROP FUNCTION stats_source_preferred_update();
DROP FUNCTION stats_observation_preferred_update();
DROP FUNCTION stats_observation_preferred_delete();
DROP FUNCTION stats_observation_preferred_insert();
"""


class Migration(migrations.Migration):
    dependencies = [("stats", "0009_observation_member_order")]

    operations = [
        migrations.AlterField(
            model_name="observation",
            name="is_preferred",
            field=models.BooleanField(
                db_default=False,
                default=False,
                editable=False,
                help_text="True for the one observation per fact that plain queries return; kept by the database "
                "(triggers on observations and sources, migration 0010), whatever writes.",
            ),
        ),
        migrations.RunSQL(RECOMPUTE, migrations.RunSQL.noop),
        migrations.AddConstraint(
            model_name="observation",
            constraint=models.UniqueConstraint(
                condition=models.Q(("is_preferred", True)),
                fields=("indicator", "year", "period", "since", "member_ids"),
                name="observation_one_preferred_per_fact",
                nulls_distinct=False,
            ),
        ),
        migrations.RunSQL(FORWARD, REVERSE),
    ]
