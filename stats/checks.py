"""Do a printed table's parts add up to its printed totals?

Works on plain records, so the same check serves ``check_data`` (the whole warehouse), the
admin's data-quality page and the import preview (rows not yet written).

A total is any observation of a count (or percent share) whose breakdown omits a dimension
that sibling observations from the same table break it down by. Rounded figures ("21.4
million") are compared within their printed precision; figures printed with a qualifier
("more than") cannot be checked and are skipped. A mismatch is *explained* when the total or
a part carries a data-quality flag or a correction.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from stats.models import Observation, Qualifier, Unit
from stats.printed import SCALES, format_decimal

HUNDRED = Decimal(100)


@dataclass(frozen=True)
class Fact:
    indicator: str
    unit: str
    source: str
    year: int
    period: str
    since: int | None
    table: str
    members: frozenset[tuple[str, str]]  # (dimension code, member code)
    value: Decimal | None
    value_text: str
    qualifier: str
    corrected_value: Decimal | None = None
    flag: str = ""
    id: int | None = None

    @property
    def fact_context(self) -> tuple:
        return (self.indicator, self.source, self.year, self.period, self.since)

    @property
    def context(self) -> tuple:
        return (*self.fact_context, self.table)

    @property
    def effective(self) -> Decimal | None:
        return self.corrected_value if self.corrected_value is not None else self.value

    @property
    def explains(self) -> bool:
        return bool(self.flag) or self.corrected_value is not None

    def describe(self) -> str:
        parts = ", ".join(f"{d}={m}" for d, m in sorted(self.members)) or "total"
        return f"{parts}: {self.value_text or '—'}"


@dataclass
class TotalCheck:
    total: Fact | None  # None: percent shares that should add up to 100
    dimension: str
    parts: list[Fact]
    expected: Decimal
    parts_sum: Decimal
    tolerance: Decimal
    explained_by: list[Fact] = field(default_factory=list)

    @property
    def difference(self) -> Decimal:
        return self.parts_sum - self.expected

    @property
    def ok(self) -> bool:
        return abs(self.difference) <= self.tolerance

    @property
    def explained(self) -> bool:
        return bool(self.explained_by)

    @property
    def balanced_after_corrections(self) -> bool:
        total = self.total.effective if self.total else HUNDRED
        values = [p.effective for p in self.parts]
        if total is None or any(v is None for v in values):
            return False
        return abs(sum(values) - total) <= self.tolerance

    @property
    def where(self) -> Fact:
        return self.total or self.parts[0]

    def __str__(self) -> str:
        f = self.parts[0]
        what = f"total {format_decimal(self.expected)}" if self.total else "shares should add up to 100"
        title = f' in "{f.table}"' if f.table else " in the running text"
        scope = ", ".join(f"{d}={m}" for d, m in sorted(self.total.members)) if self.total else ""
        return (
            f"{f.source} {f.indicator} {f.year}{title}: {self.dimension} parts"
            f"{' of ' + scope if scope else ''} sum to {format_decimal(self.parts_sum)}, {what} "
            f"(difference {'+' if self.difference > 0 else ''}{format_decimal(self.difference)})"
        )


def precision(value_text: str) -> Decimal:
    """Half a unit of the last printed digit: "21.4 million" → 50,000; "2,440" → 0; "91%" → 0.5."""
    text = value_text.strip().lower()
    match = re.search(r"(\d[\d,]*)(?:\.(\d+))?\s*(thousand|million|billion|[kmb](?![a-z]))?", text)
    if not match:
        return Decimal(0)
    decimals = len(match.group(2) or "")
    scale = SCALES.get((match.group(3) or "").lower(), 1)
    if scale == 1 and "%" not in text and decimals == 0:
        return Decimal(0)  # an exact count as printed
    return Decimal(scale) * Decimal(5) / Decimal(10) ** (decimals + 1)


def total_checks(facts: Iterable[Fact]) -> list[TotalCheck]:
    """Every checkable total (and every set of shares) with the sum of its parts."""
    facts = [f for f in facts if f.unit in (Unit.COUNT, Unit.PERCENT)]
    # A total is one fact whichever table or sentence printed it (the others are restatements of
    # it); its parts must come from one printed table, so that they are the whole breakdown.
    by_key: dict[tuple, Fact] = {(f.fact_context, f.members): f for f in facts}
    parts_index: dict[tuple, list[Fact]] = defaultdict(list)
    for f in facts:
        for member in f.members:
            parts_index[(f.context, f.members - {member}, member[0])].append(f)
    checks = []
    for (context, rest, dimension), parts in parts_index.items():
        if len(parts) < 2:
            continue
        total = by_key.get((context[:-1], rest))
        unit = parts[0].unit
        if total is None and unit != Unit.PERCENT:
            continue
        if total is not None and unit == Unit.PERCENT and total.value is not None and total.value != HUNDRED:
            # A total printed as a share of something else: nothing to add up to.
            continue
        group = [*parts, *([total] if total else [])]
        if any(f.qualifier != Qualifier.EXACT for f in group if f.value is not None):
            continue  # "more than", "<1%": cannot be checked
        expected = (total.value if total else HUNDRED) or Decimal(0)
        check = TotalCheck(
            total=total,
            dimension=dimension,
            parts=sorted(parts, key=lambda f: sorted(f.members)),
            expected=expected,
            parts_sum=sum((p.value or Decimal(0) for p in parts), Decimal(0)),
            tolerance=sum((precision(f.value_text) for f in group), Decimal(0)),
            explained_by=[f for f in group if f.explains],
        )
        if total is not None and total.value is None:
            check.explained_by = check.explained_by or [total]
        checks.append(check)
    return sorted(checks, key=lambda c: (c.where.source, c.where.indicator, c.where.year, c.dimension))


def warehouse_facts(queryset=None) -> list[Fact]:
    """The observations of ``queryset`` (default: all) as plain records."""
    from stats.lookups import CatalogLookup

    lookup = CatalogLookup.load()
    member_codes = {m.id: (m.dimension.code, m.code) for m in lookup.members_by_id.values()}
    queryset = queryset if queryset is not None else Observation.objects.all()
    rows = queryset.values_list(
        "id",
        "indicator__code",
        "indicator__unit",
        "source__slug",
        "year",
        "period",
        "since",
        "table",
        "member_ids",
        "value",
        "value_text",
        "qualifier",
        "corrected_value",
        "flag",
    )
    return [
        Fact(
            id=r[0],
            indicator=r[1],
            unit=r[2],
            source=r[3],
            year=r[4],
            period=r[5],
            since=r[6],
            table=r[7],
            members=frozenset(member_codes[i] for i in r[8]),
            value=r[9],
            value_text=r[10],
            qualifier=r[11],
            corrected_value=r[12],
            flag=r[13],
        )
        for r in rows.iterator(chunk_size=5000)
    ]


def mismatches(checks: list[TotalCheck]) -> tuple[list[TotalCheck], list[TotalCheck]]:
    """(unexplained, explained) checks whose parts do not add up."""
    bad = [c for c in checks if not c.ok]
    return [c for c in bad if not c.explained], [c for c in bad if c.explained]
