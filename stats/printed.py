"""Reading figures and labels the way the documents print them.

Pure functions, no database: shared by the fixture loader, the import service and the tests.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

NUMBER_WORDS = {
    "zero": 0,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
    "twenty": 20,
    "doubled": 2,
    "tripled": 3,
}
SCALES = {"thousand": 10**3, "k": 10**3, "million": 10**6, "m": 10**6, "billion": 10**9, "b": 10**9}

_NUMBER = re.compile(
    r"""^\s*(?P<lt><\s*)?(?P<neg>[-−]\s*)?
    (?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)
    \s*(?P<scale>thousand|million|billion|[kmb](?![a-z]))?
    \s*(?P<unit>%|percent)?
    \s*(?P<plus>\+)?\s*$""",
    re.IGNORECASE | re.VERBOSE,
)
# A plain whole number as most cells print it ("29,568", "1234"): read without the general pattern.
_PLAIN_WHOLE = re.compile(r"[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+")
_ONE_IN_N = re.compile(r"^\s*1\s+in\s+(?P<n>\d[\d,]*)\s*$", re.IGNORECASE)


class ValueTextError(ValueError):
    """The printed text is not a figure we can read."""


@dataclass(frozen=True, slots=True)
class ParsedValue:
    value: Decimal
    is_percent: bool = False
    is_one_in_n: bool = False
    plus: bool = False  # printed with a trailing "+": "83,000+"
    less_than: bool = False  # printed with a leading "<": "<1%"


def parse_value_text(text: str) -> ParsedValue:
    """Read a printed figure: "29,568", "21.7 million", "91%", "1 in 6", "83,000+", "22.3M+"."""
    if text.__class__ is str and _PLAIN_WHOLE.fullmatch(text):
        return ParsedValue(Decimal(text.replace(",", "")))  # what the general path gives for these
    cleaned = unicodedata.normalize("NFKC", str(text)).strip()
    if not cleaned:
        raise ValueTextError("empty figure")
    if match := _ONE_IN_N.match(cleaned):
        return ParsedValue(Decimal(match["n"].replace(",", "")), is_one_in_n=True)
    if cleaned.lower() in NUMBER_WORDS:
        return ParsedValue(Decimal(NUMBER_WORDS[cleaned.lower()]))
    match = _NUMBER.match(cleaned)
    if not match:
        raise ValueTextError(f"{text!r} is not a number (expected e.g. 29,568 / 21.7 million / 91% / 1 in 6)")
    try:
        value = Decimal(match["num"].replace(",", ""))
    except InvalidOperation as exc:  # pragma: no cover - the regex admits only decimals
        raise ValueTextError(f"{text!r} is not a number") from exc
    if match["scale"]:
        value *= SCALES[match["scale"].lower()]
    if match["neg"]:
        value = -value
    return ParsedValue(
        value=Decimal(int(value)) if value == value.to_integral_value() else value,
        is_percent=bool(match["unit"]),
        plus=bool(match["plus"]),
        less_than=bool(match["lt"]),
    )


def parse_number(text: str) -> Decimal:
    """A plain number typed by staff (corrections, import cells); no units or words."""
    parsed = parse_value_text(text)
    if parsed.is_one_in_n:
        raise ValueTextError(f"{text!r} is not a plain number")
    return parsed.value


def normalize_label(label: str) -> str:
    """The form in which two spellings of one member compare equal.

    Case, accents, punctuation and spacing do not matter: "Lost, Injured, or Otherwise Missing"
    equals "lost injured or otherwise missing", "U.S." equals "US", "Guardian’s" equals "Guardians".
    """
    text = unicodedata.normalize("NFKD", str(label)).encode("ascii", "ignore").decode()
    text = text.casefold().replace("&", " and ")
    text = re.sub(r"[.'`]", "", text)
    text = re.sub(r"[^a-z0-9]+", " ", text)
    return text.strip()


def collapse_whitespace(text: str) -> str:
    # str.split() splits on exactly the characters re's \s matches (Unicode whitespace), faster.
    return " ".join(str(text).split())


def format_decimal(value: Decimal | None) -> str:
    """A stored Decimal without the storage's trailing zeros: 25174.0000 → "25174", 21.5000 → "21.5"."""
    if value is None:
        return ""
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text
