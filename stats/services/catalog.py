"""Writes to the catalog: topics, dimensions with members and aliases, indicators, sources.

Each upsert writes only what differs, so loading the same catalog twice changes nothing (and
does not bump the data version).
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from stats.models import Dimension, Indicator, Member, MemberAlias, Source, Topic, Unit
from stats.printed import normalize_label


def _upsert(model, lookup: dict[str, Any], values: dict[str, Any]):
    obj = model.objects.filter(**lookup).first()
    if obj is None:
        obj = model(**lookup, **values)
        obj.full_clean(validate_unique=False, validate_constraints=False)
        obj.save()
        return obj, True
    changed = [k for k, v in values.items() if getattr(obj, k) != v]
    if changed:
        for k in changed:
            setattr(obj, k, values[k])
        obj.full_clean(validate_unique=False, validate_constraints=False)
        obj.save(update_fields=changed)
    return obj, bool(changed)


def topic_upsert(*, code: str, name: str, description: str = "", order: int = 0) -> Topic:
    return _upsert(Topic, {"code": code}, {"name": name, "description": description, "order": order})[0]


def source_upsert(
    *,
    slug: str,
    title: str,
    kind: str,
    edition: int,
    document: str,
    publisher: str = "",
    published: str = "",
    format: str = "",
    url: str = "",
    note: str = "",
) -> Source:
    values = {
        "title": title,
        "kind": kind,
        "edition": edition,
        "document": document,
        "publisher": publisher or "National Center for Missing & Exploited Children",
        "published": published or "",
        "format": format or "",
        "url": url or "",
        "note": note or "",
    }
    return _upsert(Source, {"slug": slug}, values)[0]


def indicator_upsert(*, code: str, name: str, unit: str, topic: str, definition: str = "", order: int = 0) -> Indicator:
    if unit not in Unit.values:
        raise ValidationError(
            {"unit": f"unknown unit '{unit}' of indicator {code} (expected one of {', '.join(Unit.values)})"}
        )
    topic_obj = Topic.objects.filter(code=topic).first()
    if topic_obj is None:
        raise ValidationError({"topic": f"unknown topic '{topic}' of indicator {code}"})
    values = {
        "name": name,
        "unit": unit,
        "topic": topic_obj,
        "definition": definition,
        "order": order,
    }
    return _upsert(Indicator, {"code": code}, values)[0]


def dimension_upsert(*, code: str, name: str, description: str = "", order: int = 0) -> Dimension:
    return _upsert(Dimension, {"code": code}, {"name": name, "description": description, "order": order})[0]


def member_upsert(
    *, dimension: Dimension, code: str, label: str, order: int = 0, aliases: list[str] | tuple = ()
) -> Member:
    """A member and its spellings: code, label and aliases all read as this member.

    Spellings another member already uses are refused (one spelling, one member).
    """
    member, _ = _upsert(Member, {"dimension": dimension, "code": code}, {"label": label, "order": order})
    wanted = {}
    for spelling in (label, *aliases, code):  # printed spellings first: they are what staff recognise
        wanted.setdefault(normalize_label(spelling), spelling)
    taken = dict(
        MemberAlias.objects.filter(dimension=dimension, normalized__in=list(wanted))
        .exclude(member=member)
        .values_list("normalized", "member__code")
    )
    if taken:
        clashes = ", ".join(f'"{wanted[n]}" (already {m})' for n, m in taken.items())
        raise ValidationError(f"member {dimension.code}.{code}: spellings used by another member: {clashes}")
    existing = {a.normalized: a for a in MemberAlias.objects.filter(member=member)}
    stale = [a.id for n, a in existing.items() if n not in wanted]
    if stale:
        MemberAlias.objects.filter(id__in=stale).delete()
    new = [MemberAlias(member=member, dimension=dimension, alias=s) for n, s in wanted.items() if n not in existing]
    for alias in new:
        alias.normalized = normalize_label(alias.alias)
    MemberAlias.objects.bulk_create(new)
    return member


@transaction.atomic
def catalog_load(*, data: dict[str, Any]) -> dict[str, int]:
    """Upsert a whole catalog (the shape of fixtures/catalog.yaml); returns counts per kind."""
    counts = {"topics": 0, "dimensions": 0, "members": 0, "indicators": 0}
    for order, topic in enumerate(data.get("topics") or []):
        topic_upsert(
            code=topic["code"],
            name=topic["name"],
            description=topic.get("description", ""),
            order=order,
        )
        counts["topics"] += 1
    for order, dim in enumerate(data.get("dimensions") or []):
        dimension = dimension_upsert(
            code=dim["code"], name=dim["name"], description=dim.get("description", ""), order=order
        )
        counts["dimensions"] += 1
        for member_order, m in enumerate(dim.get("members") or []):
            member_upsert(
                dimension=dimension,
                code=str(m["code"]),
                label=str(m["label"]),
                order=member_order,
                aliases=[str(a) for a in m.get("aliases") or []],
            )
            counts["members"] += 1
    for order, ind in enumerate(data.get("indicators") or []):
        indicator_upsert(
            code=ind["code"],
            name=ind["name"],
            unit=ind["unit"],
            topic=ind["topic"],
            definition=ind.get("definition", ""),
            order=order,
        )
        counts["indicators"] += 1
    return counts
