"""The reference check of migration 0016 reads the statement's rows once, not four times.

A statement's transition table is read by every statement trigger; at 1,000,000 rows it no longer fits
in ``work_mem`` and each read is a pass over a temporary file of about 270 MB (about a second each,
measured with auto_explain). The check collected the distinct indicators and sources with four reads
(lock, then check, for each); one read with two grouping sets now collects both, and the locks and the
checks work on those few ids. Same locks, same error code, constraint names and messages.
"""

from importlib import import_module

from django.db import migrations

FUNCTION = """
CREATE OR REPLACE FUNCTION stats_observation_references_verify() RETURNS trigger AS $$
DECLARE
  indicators bigint[];
  sources bigint[];
  missing bigint;
BEGIN
  -- Both columns are NOT NULL: in a row of one grouping set, the other set's column is null.
  SELECT array_agg(d.indicator_id) FILTER (WHERE d.indicator_id IS NOT NULL),
         array_agg(d.source_id) FILTER (WHERE d.source_id IS NOT NULL)
    INTO indicators, sources
    FROM (SELECT indicator_id, source_id FROM new_rows GROUP BY GROUPING SETS ((indicator_id), (source_id))) d;
  PERFORM 1 FROM stats_indicator WHERE id = ANY (indicators) FOR KEY SHARE;
  PERFORM 1 FROM stats_source WHERE id = ANY (sources) FOR KEY SHARE;
  SELECT n.id INTO missing FROM unnest(indicators) AS n(id)
   WHERE NOT EXISTS (SELECT 1 FROM stats_indicator i WHERE i.id = n.id) LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'insert or update on table "stats_observation" violates foreign key constraint '
                    '"stats_observation_indicator_id_fk": Key (indicator_id)=(%) is not present in table '
                    '"stats_indicator".', missing
      USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'stats_observation_indicator_id_fk';
  END IF;
  SELECT n.id INTO missing FROM unnest(sources) AS n(id)
   WHERE NOT EXISTS (SELECT 1 FROM stats_source s WHERE s.id = n.id) LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'insert or update on table "stats_observation" violates foreign key constraint '
                    '"stats_observation_source_id_fk": Key (source_id)=(%) is not present in table '
                    '"stats_source".', missing
      USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'stats_observation_source_id_fk';
  END IF;
  RETURN NULL;
END $$ LANGUAGE plpgsql;
"""


def previous() -> str:
    """The function as migration 0016 created it."""
    text = import_module("stats.migrations.0016_observation_references_per_statement").FORWARD
    start = text.index("CREATE FUNCTION stats_observation_references_verify()")
    end = text.index("END $$ LANGUAGE plpgsql;", start) + len("END $$ LANGUAGE plpgsql;")
    return text[start:end].replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1)


class Migration(migrations.Migration):
    dependencies = [("stats", "0017_drop_observation_indicator_year")]

    operations = [migrations.RunSQL(FUNCTION, previous())]
