"""Resolving natural keys (codes, slugs, member labels and aliases) to catalog rows.

Loaded once per import or request; every miss says what was not found and the closest
matches, e.g. ``unknown member "Nevadda" of dimension state (did you mean "Nevada"?)``.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from functools import cached_property

from stats.models import Dimension, Indicator, Member, MemberAlias, Observation, Restatement, Source, Topic
from stats.printed import normalize_label


class LookupFailed(LookupError):
    """A code, slug or label that names nothing in the catalog."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


_CACHE: dict = {}


def did_you_mean(word: str, candidates, n: int = 3) -> str:
    word, candidates = str(word), list(candidates)
    if len(word) > 3 * max(map(len, candidates), default=0):
        return ""  # too long to be within the cutoff of any candidate; difflib would take time growing with it
    matches = difflib.get_close_matches(word, candidates, n=n, cutoff=0.6)
    if not matches:
        return ""
    return " (did you mean " + " or ".join(f'"{m}"' for m in matches) + "?)"


@dataclass
class CatalogLookup:
    indicators: dict[str, Indicator] = field(default_factory=dict)
    sources: dict[str, Source] = field(default_factory=dict)
    dimensions: dict[str, Dimension] = field(default_factory=dict)
    members_by_id: dict[int, Member] = field(default_factory=dict)
    # (dimension code, normalized spelling) -> member
    spellings: dict[tuple[str, str], Member] = field(default_factory=dict)

    @classmethod
    def load(cls) -> CatalogLookup:
        lookup = cls()
        lookup.indicators = {i.code: i for i in Indicator.objects.select_related("topic")}
        lookup.sources = {s.slug: s for s in Source.objects.all()}
        lookup.dimensions = {d.code: d for d in Dimension.objects.all()}
        by_dim_id = {d.id: d for d in lookup.dimensions.values()}
        for member in Member.objects.all():
            member.dimension = by_dim_id[member.dimension_id]
            lookup.members_by_id[member.id] = member
        for dim_id, normalized, member_id in MemberAlias.objects.values_list("dimension_id", "normalized", "member_id"):
            lookup.spellings[(by_dim_id[dim_id].code, normalized)] = lookup.members_by_id[member_id]
        return lookup

    @classmethod
    def cached(cls, stamp: tuple[int, str] | None = None) -> CatalogLookup:
        """The catalog, reloaded only when the data version changed (one small query per call).

        Pass the ``DataVersion.stamp()`` already read by the caller to skip that query.
        """
        from stats.models import DataVersion

        stamp = stamp or DataVersion.stamp()
        found = _CACHE.get("lookup")
        if found is None or found[0] != stamp:
            found = _CACHE["lookup"] = (stamp, cls.load())
        return found[1]

    @classmethod
    def current(cls) -> tuple[tuple[int, str], CatalogLookup] | None:
        """(its data version stamp, the catalog) as last loaded by this process, without a query; None before."""
        return _CACHE.get("lookup")

    def indicator(self, code: str) -> Indicator:
        try:
            return self.indicators[code]
        except KeyError:
            raise LookupFailed(f"unknown indicator '{code}'{did_you_mean(code, self.indicators)}") from None

    def source(self, slug: str) -> Source:
        try:
            return self.sources[slug]
        except KeyError:
            raise LookupFailed(f"unknown source '{slug}'{did_you_mean(slug, self.sources)}") from None

    def topic(self, code: str) -> Topic:
        try:
            return self.topics[code]
        except KeyError:
            raise LookupFailed(f"unknown topic '{code}'{did_you_mean(code, self.topics)}") from None

    def indicators_of_topic(self, code: str) -> list[Indicator]:
        topic = self.topic(code)
        return [i for i in self.indicators.values() if i.topic_id == topic.id]

    def dimension(self, code: str) -> Dimension:
        try:
            return self.dimensions[code]
        except KeyError:
            raise LookupFailed(f"unknown dimension '{code}'{did_you_mean(code, self.dimensions)}") from None

    def member(self, dimension_code: str, text: str) -> Member:
        """The member of ``dimension_code`` whose code, label or alias reads as ``text``."""
        self.dimension(dimension_code)
        found = self.spellings.get((dimension_code, normalize_label(text)))
        if found is None:
            labels = [m.label for m in self.members_by_id.values() if m.dimension.code == dimension_code]
            raise LookupFailed(f'unknown member "{text}" of dimension {dimension_code}{did_you_mean(text, labels)}')
        return found

    def members(self, ids) -> list[Member]:
        return [self.members_by_id[i] for i in ids]

    def breakdown(self, ids) -> list[Member]:
        """An observation's members in dimension order, worked out once per distinct breakdown."""
        key = tuple(ids)
        found = self._breakdowns.get(key)
        if found is None:
            members = self.members(key)
            found = self._breakdowns[key] = sorted(members, key=lambda m: (m.dimension.order, m.dimension.code))
        return found

    @cached_property
    def _breakdowns(self) -> dict[tuple[int, ...], list[Member]]:
        return {}

    @cached_property
    def topics(self) -> dict[str, Topic]:
        """Every topic by code, read on first use (only topic filters need it; most requests never do)."""
        return {t.code: t for t in Topic.objects.all()}

    @cached_property
    def indicators_by_id(self) -> dict[int, Indicator]:
        return {i.id: i for i in self.indicators.values()}

    @cached_property
    def sources_by_id(self) -> dict[int, Source]:
        return {s.id: s for s in self.sources.values()}

    def attach(self, observations: list[Observation], restatements: bool = True) -> list[Observation]:
        """Give each observation its indicator (with topic) and source from the catalog, and its
        restatements in one query: a page of 10,000 rows then builds no other model per row."""
        indicators, sources = self.indicators_by_id, self.sources_by_id
        cache_indicator = Observation.indicator.field.set_cached_value
        cache_source = Observation.source.field.set_cached_value
        for obs in observations:
            cache_indicator(obs, indicators[obs.indicator_id])
            cache_source(obs, sources[obs.source_id])
        if restatements:
            found: dict[int, list[Restatement]] = {o.id: [] for o in observations}
            for restatement in Restatement.objects.filter(observation_id__in=list(found)):
                found[restatement.observation_id].append(restatement)
            for obs in observations:
                obs._prefetched_objects_cache = {"restatements": found[obs.id]}
        return observations
