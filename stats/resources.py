"""django-import-export resources: what staff export from the admin, by natural keys (codes,
slugs, member labels), never database ids, and safe to open in a spreadsheet."""

from __future__ import annotations

from import_export import fields, resources

from stats.exports import facts_dataset
from stats.models import Dimension, Indicator, Member, Observation, Source, Topic


class ObservationResource(resources.ModelResource):
    """Observations as the flat open-data table (stats.exports.facts_dataset): one row per figure,
    one column per dimension holding the member label; the long import shape reads the same keys."""

    class Meta:
        model = Observation
        fields = ()

    def export(self, queryset=None, **kwargs):
        return facts_dataset(queryset if queryset is not None else Observation.objects.all())


class SourceResource(resources.ModelResource):
    class Meta:
        model = Source
        import_id_fields = ("slug",)
        fields = ("slug", "title", "kind", "edition", "publisher", "published", "document", "format", "url", "note")
        export_order = fields


class TopicResource(resources.ModelResource):
    class Meta:
        model = Topic
        import_id_fields = ("code",)
        fields = ("code", "name", "description", "order")


class IndicatorResource(resources.ModelResource):
    topic = fields.Field(attribute="topic__code", column_name="topic")

    class Meta:
        model = Indicator
        import_id_fields = ("code",)
        fields = ("code", "name", "definition", "unit", "topic", "order")
        export_order = fields


class DimensionResource(resources.ModelResource):
    class Meta:
        model = Dimension
        import_id_fields = ("code",)
        fields = ("code", "name", "description", "order")


class MemberResource(resources.ModelResource):
    dimension = fields.Field(attribute="dimension__code", column_name="dimension")
    aliases = fields.Field(column_name="aliases")

    class Meta:
        model = Member
        fields = ("dimension", "code", "label", "order", "aliases")
        export_order = fields

    def dehydrate_aliases(self, member: Member) -> str:
        return "; ".join(sorted(a.alias for a in member.aliases.all()))
