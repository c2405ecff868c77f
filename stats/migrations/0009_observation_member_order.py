"""Each observation stores its breakdown's display order, so the default page order is an index scan.

``member_order`` is one text (collation "C") per observation: for each member of the breakdown, in
display order, ``hex8(dimension order) || dimension code || chr(1) || hex8(member order) || hex16(member id)``.
The pieces are prefix-free, so comparing two keys compares the breakdowns member by member by
(dimension order, dimension code, member order, member id), the order the page query used to
compute per row from the catalog's member ranks. It holds no ranks, so adding a member or a
dimension rewrites nothing.

The integrity trigger that already looks up an observation's members computes it (every writer:
the ORM, COPY, raw SQL), and recomputes it when anyone writes the column directly. Changing a
member's order, or a dimension's order or code, recomputes the key of the observations that use it.
"""

from django.db import migrations, models

MEMBERS_CHECK_BODY = """
CREATE OR REPLACE FUNCTION stats_observation_members_check() RETURNS trigger AS $$
DECLARE
  found integer;
  dims bigint[];
  distinct_dims integer;
  sort_key text;
BEGIN
  IF NEW.member_ids IS NULL THEN
    NEW.member_ids := '{}';
  END IF;
  IF cardinality(NEW.member_ids) <> (SELECT count(DISTINCT m) FROM unnest(NEW.member_ids) AS m) THEN
    RAISE EXCEPTION 'observation breakdown % names a member twice', NEW.member_ids
      USING ERRCODE = 'check_violation', CONSTRAINT = 'observation_members_once';
  END IF;
  SELECT coalesce(array_agg(m ORDER BY m), '{}') INTO NEW.member_ids FROM unnest(NEW.member_ids) AS m;
  SELECT count(*), coalesce(array_agg(s.dimension_id ORDER BY s.dimension_id), '{}'),
         count(DISTINCT s.dimension_id), coalesce(string_agg(s.k, '' ORDER BY s.k COLLATE "C"), '')
    INTO found, dims, distinct_dims, sort_key
    FROM (SELECT m.dimension_id, stats_member_sort_key(d."order", d.code, m."order", m.id) AS k
            FROM stats_member m JOIN stats_dimension d ON d.id = m.dimension_id
           WHERE m.id = ANY (NEW.member_ids)) s;
  IF found <> cardinality(NEW.member_ids) THEN
    RAISE EXCEPTION 'observation breakdown % names a member that does not exist', NEW.member_ids
      USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'observation_members_exist';
  END IF;
  IF distinct_dims <> found THEN
    RAISE EXCEPTION 'observation breakdown % has two members of one dimension', NEW.member_ids
      USING ERRCODE = 'check_violation', CONSTRAINT = 'observation_one_member_per_dimension';
  END IF;
  NEW.dimension_ids := dims;
  NEW.member_order := sort_key;
  RETURN NEW;
END $$ LANGUAGE plpgsql;
"""

FORWARD = (
    """
CREATE FUNCTION stats_member_sort_key(dimension_order bigint, dimension_code text, member_order bigint,
                                      member_id bigint) RETURNS text AS $$
  SELECT lpad(to_hex(dimension_order), 8, '0') || dimension_code || chr(1)
         || lpad(to_hex(member_order), 8, '0') || lpad(to_hex(member_id), 16, '0')
$$ LANGUAGE sql IMMUTABLE STRICT;
"""
    + MEMBERS_CHECK_BODY
    + """
DROP TRIGGER stats_observation_members_check ON stats_observation;
CREATE TRIGGER stats_observation_members_check
  BEFORE INSERT OR UPDATE OF member_ids, dimension_ids, member_order ON stats_observation
  FOR EACH ROW EXECUTE FUNCTION stats_observation_members_check();

-- Writing the column (any value) makes the trigger above recompute it.
UPDATE stats_observation SET member_order = '';

CREATE FUNCTION stats_member_reorder() RETURNS trigger AS $$
BEGIN
  UPDATE stats_observation SET member_order = '' WHERE member_ids @> ARRAY[NEW.id]::bigint[];
  RETURN NULL;
END $$ LANGUAGE plpgsql;

CREATE TRIGGER stats_member_reorder
  AFTER UPDATE OF "order" ON stats_member
  FOR EACH ROW WHEN (OLD."order" IS DISTINCT FROM NEW."order")
  EXECUTE FUNCTION stats_member_reorder();

CREATE FUNCTION stats_dimension_reorder() RETURNS trigger AS $$
BEGIN
  -- By member ids, so the GIN index on member_ids finds them.
  UPDATE stats_observation SET member_order = ''
   WHERE member_ids && (SELECT coalesce(array_agg(id), '{}') FROM stats_member WHERE dimension_id = NEW.id);
  RETURN NULL;
END $$ LANGUAGE plpgsql;

CREATE TRIGGER stats_dimension_reorder
  AFTER UPDATE OF "order", code ON stats_dimension
  FOR EACH ROW WHEN (OLD."order" IS DISTINCT FROM NEW."order" OR OLD.code IS DISTINCT FROM NEW.code)
  EXECUTE FUNCTION stats_dimension_reorder();
"""
)

# The function and trigger as 0002_integrity_triggers created them.
REVERSE = """
DROP TRIGGER IF EXISTS stats_dimension_reorder ON stats_dimension;
DROP FUNCTION IF EXISTS stats_dimension_reorder();
DROP TRIGGER IF EXISTS stats_member_reorder ON stats_member;
DROP FUNCTION IF EXISTS stats_member_reorder();
DROP TRIGGER stats_observation_members_check ON stats_observation;
CREATE OR REPLACE FUNCTION stats_observation_members_check() RETURNS trigger AS $$
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
DROP FUNCTION IF EXISTS stats_member_sort_key(bigint, text, bigint, bigint);
"""


class Migration(migrations.Migration):
    dependencies = [
        ("stats", "0008_observation_events_related_name"),
    ]

    operations = [
        migrations.AddField(
            model_name="observation",
            name="member_order",
            field=models.TextField(
                blank=True,
                db_collation="C",
                db_default="",
                default="",
                editable=False,
                help_text="Sort key of the breakdown in display order (dimension order, then member order); "
                "filled by the database, kept right when members or dimensions are reordered.",
            ),
        ),
        migrations.RunSQL(FORWARD, REVERSE),
        migrations.AddIndex(
            model_name="observation",
            index=models.Index(
                condition=models.Q(("is_preferred", True)),
                fields=["indicator", "year", "member_order", "id"],
                name="observation_page_order",
            ),
        ),
    ]
