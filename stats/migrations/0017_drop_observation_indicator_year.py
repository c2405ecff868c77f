"""``observation_indicator_year`` goes, and the fact's unique index lists the source last, so that it serves what
the dropped index served: each index costs every written row.

- The unique index was (indicator, source, year, period, since, member_ids); it is now (indicator, year,
  period, since, member_ids, source): the same rule (the same columns), and every figure of one fact
  (the preferred ranking, the import's matching, restatements) or of one indicator and year is one
  range of it, without skipping over the sources.
- Preferred reads by indicator (and year, or breakdown) use ``observation_one_preferred_per_fact``,
  which also answers a series (an indicator and a breakdown, all years) without reading the
  breakdown's GIN entry, whose length grows with every indicator's rows (the bench's series after a
  1,000,000-row import of other indicators: 9.8-12 ms through that entry, 1.1 ms without it).
- The reference triggers of migration 0016 look observations up by indicator through the unique index.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("stats", "0016_observation_references_per_statement")]

    operations = [
        migrations.RemoveIndex(model_name="observation", name="observation_indicator_year"),
        migrations.RemoveConstraint(model_name="observation", name="observation_fact_unique_per_source"),
        migrations.AddConstraint(
            model_name="observation",
            constraint=models.UniqueConstraint(
                fields=("indicator", "year", "period", "since", "member_ids", "source"),
                name="observation_fact_unique_per_source",
                nulls_distinct=False,
                violation_error_message=(
                    "This source already has an observation for this indicator, year, period and breakdown."
                ),
            ),
        ),
    ]
