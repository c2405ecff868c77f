"""Reading figures and labels as the documents print them."""

from decimal import Decimal

import pytest

from stats.printed import ValueTextError, format_decimal, normalize_label, parse_value_text


@pytest.mark.parametrize(
    ("text", "value", "flags"),
    [
        ("29,568", "29568", {}),
        ("21.7 million", "21700000", {}),
        ("9.3 Million", "9300000", {}),
        ("22.3M+", "22300000", {"plus": True}),
        ("83,000+", "83000", {"plus": True}),
        ("91%", "91", {"is_percent": True}),
        ("21.50%", "21.50", {"is_percent": True}),
        ("<1%", "1", {"is_percent": True, "less_than": True}),
        ("1 in 6", "6", {"is_one_in_n": True}),
        ("seven", "7", {}),
        ("doubled", "2", {}),
        ("29,397,681 million", "29397681000000", {}),
        ("-5%", "-5", {"is_percent": True}),
    ],
)
def test_printed_figures_are_read_exactly(text, value, flags):
    parsed = parse_value_text(text)
    assert parsed.value == Decimal(value)
    assert str(parsed.value) == value  # no float rounding, no exponent notation
    for name, expected in flags.items():
        assert getattr(parsed, name) is expected


@pytest.mark.parametrize("text", ["", "n/a", "12 apples", "1,2,3", "=1+1", "1 in", "12.5.3"])
def test_what_is_not_a_figure_is_refused(text):
    with pytest.raises(ValueTextError):
        parse_value_text(text)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Neighbor/Family Friend", "neighbor family friend"),
        ("Lost, Injured, or Otherwise Missing", "Lost Injured or Otherwise Missing"),
        ("U.S. Federal Law Enforcement", "US Federal Law Enforcement"),
        ("Guardian’s Partner", "Guardian's Partner"),
        ("NATIVE AMERICAN", "Native American"),
    ],
)
def test_spellings_that_differ_only_in_form_compare_equal(a, b):
    assert normalize_label(a) == normalize_label(b)


def test_different_words_stay_different():
    assert normalize_label("Neighbor/Family Friend") != normalize_label("Neighbor or Family Friend")


def test_stored_decimals_print_without_storage_zeros():
    assert format_decimal(Decimal("25174.0000")) == "25174"
    assert format_decimal(Decimal("21.5000")) == "21.5"
    assert format_decimal(None) == ""
