"""``observation_indicator_year`` goes: other indexes serve every read it served, and each index costs every written row.

Preferred reads by indicator (and year, or breakdown) use ``observation_one_preferred_per_fact``
(indicator, year, period, since, member_ids), which also answers a series (indicator and breakdown,
all years) without reading the breakdown's GIN entry, whose length grows with every indicator's rows;
reads of every source's figures and the reference triggers of migration 0016 use the fact's unique
index, which leads with the indicator (PostgreSQL 18 skips over its source column).
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("stats", "0016_observation_references_per_statement")]

    operations = [migrations.RemoveIndex(model_name="observation", name="observation_indicator_year")]
