"""How a figure is shown in words: one wording for the explorer, citations, GraphQL and exports.

The figure to show is the corrected one where there is one, else the printed one. A printed figure
is shown as the document words it ("more than 21.7 million"); a corrected one is written out from
the stored number, exactly: scaled to million or billion only where that loses no digit, never rounded.
"""

from __future__ import annotations

from decimal import Decimal

from stats.models import Qualifier, Unit
from stats.printed import format_decimal

SCALES = ((Decimal(10**9), "billion"), (Decimal(10**6), "million"))
# At most this many decimals in a scaled figure ("20.55 million"); more reads better in full.
SCALED_DECIMALS = 2


def display_value(value: Decimal | None, corrected_value: Decimal | None) -> Decimal | None:
    """The figure to show: the corrected one where there is one, else the printed one."""
    return corrected_value if corrected_value is not None else value


def printed_text(qualifier: str, value_text: str) -> str:
    """The figure as the document words it: "more than 21.7 million", "83,000+" ("" if not printed)."""
    if not value_text:
        return ""
    if qualifier == Qualifier.PLUS:
        return f"{value_text}+"
    if qualifier == Qualifier.EXACT or qualifier not in Qualifier.values:
        return value_text
    return f"{Qualifier(qualifier).label} {value_text}"


def number_text(value: Decimal, unit: str) -> str:
    """A stored figure in words, exactly: "20.5 million", "29,397,681", "91%", "1 in 6"."""
    if unit in (Unit.PERCENT, Unit.PERCENT_CHANGE):
        return f"{format_decimal(value)}%"
    if unit == Unit.ONE_IN_N:
        return f"1 in {_grouped(value)}"
    if unit == Unit.MULTIPLE:
        return f"{format_decimal(value)} times"
    for scale, word in SCALES:
        scaled = value / scale
        if abs(scaled) >= 1 and -scaled.normalize().as_tuple().exponent <= SCALED_DECIMALS:
            return f"{format_decimal(scaled)} {word}"
    return _grouped(value)


def display_text(value_text: str, qualifier: str, corrected_value: Decimal | None, unit: str) -> str | None:
    """The figure to show, in words, with its printed qualifier; None when there is no figure.

    Where there is a correction it replaces the printed figure; the printed qualifier still applies.
    """
    if corrected_value is None:
        return printed_text(qualifier, value_text) or None
    return printed_text(qualifier, number_text(corrected_value, unit))


def _grouped(value: Decimal) -> str:
    """Thousands separated, exact: 29397681 → "29,397,681", 1234.5 → "1,234.5"."""
    text = format_decimal(value)
    whole, _, fraction = text.partition(".")
    sign = "-" if whole.startswith("-") else ""
    whole = f"{int(whole.lstrip('-')):,}"
    return sign + whole + (f".{fraction}" if fraction else "")
