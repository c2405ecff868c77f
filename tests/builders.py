"""Small builders for tests: a few readable calls instead of giant JSON fixtures."""

from __future__ import annotations

import itertools
from decimal import Decimal

from stats.models import Dimension, Indicator, Member, MemberAlias, Observation, Source, Topic, Unit
from stats.printed import normalize_label

_counter = itertools.count(1)


class Builder:
    def topic(self, code: str | None = None) -> Topic:
        code = code or f"topic_{next(_counter)}"
        return Topic.objects.get_or_create(code=code, defaults={"name": code.replace("_", " ").title()})[0]

    def indicator(self, code: str | None = None, unit: str = Unit.COUNT, topic: Topic | None = None) -> Indicator:
        code = code or f"test.indicator_{next(_counter)}"
        return Indicator.objects.create(code=code, name=code, unit=unit, topic=topic or self.topic())

    def source(self, slug: str | None = None, edition: int = 2022, kind: str = Source.Kind.IMPACT_REPORT) -> Source:
        slug = slug or f"test-source-{next(_counter)}"
        return Source.objects.create(slug=slug, title=slug, kind=kind, edition=edition, document=f"{slug}.txt")

    def dimension(self, code: str | None = None, members: list[str] = ()) -> Dimension:
        code = code or f"dim_{next(_counter)}"
        dimension = Dimension.objects.create(code=code, name=code)
        for order, label in enumerate(members):
            self.member(dimension, label, order=order)
        return dimension

    def member(self, dimension: Dimension, label: str, order: int = 0, aliases: list[str] = ()) -> Member:
        code = label.lower().replace(" ", "_")
        member = Member.objects.create(dimension=dimension, code=code, label=label, order=order)
        spellings = {normalize_label(s): s for s in (code, label, *aliases)}
        for spelling in spellings.values():
            MemberAlias.objects.create(member=member, dimension=dimension, alias=spelling)
        return member

    def observation(
        self, indicator: Indicator, source: Source, year: int = 2022, value="1", members: list[Member] = (), **fields
    ) -> Observation:
        obs = Observation.objects.create(
            indicator=indicator,
            source=source,
            year=year,
            value=Decimal(value) if value is not None else None,
            value_text=fields.pop("value_text", str(value) if value is not None else ""),
            member_ids=[m.id for m in members],
            quote=fields.pop("quote", "a test figure"),
            **fields,
        )
        obs.refresh_from_db(fields=["is_preferred", "member_ids", "dimension_ids", "member_order"])
        return obs
