"""How a figure is shown in words (stats.display): exact, with its printed qualifier."""

from decimal import Decimal

import pytest

from stats.display import display_text, display_value, number_text, printed_text


@pytest.mark.parametrize(
    ("value", "unit", "text"),
    [
        ("20500000", "count", "20.5 million"),
        ("20500000.0000", "count", "20.5 million"),  # as stored: the storage's zeros do not count as digits
        ("29397681", "count", "29,397,681"),  # scaling would need six decimals: written in full, never rounded
        ("20550000", "count", "20.55 million"),
        ("20555000", "count", "20,555,000"),
        ("2500000000", "count", "2.5 billion"),
        ("999999", "count", "999,999"),
        ("1234.5", "count", "1,234.5"),
        ("-1500000", "count", "-1.5 million"),
        ("91", "percent", "91%"),
        ("-30.28", "percent_change", "-30.28%"),
        ("6", "one_in_n", "1 in 6"),
        ("2", "multiple", "2 times"),
    ],
)
def test_a_stored_figure_is_written_out_exactly(value, unit, text):
    assert number_text(Decimal(value), unit) == text


@pytest.mark.parametrize(
    ("qualifier", "value_text", "text"),
    [
        ("exact", "29,568", "29,568"),
        ("more_than", "21.7 million", "more than 21.7 million"),
        ("at_least", "1 in 6", "at least 1 in 6"),
        ("plus", "83,000", "83,000+"),
        ("less_than", "1%", "less than 1%"),
        ("more_than", "", ""),  # nothing printed: no words around nothing
    ],
)
def test_a_printed_figure_reads_as_the_document_words_it(qualifier, value_text, text):
    assert printed_text(qualifier, value_text) == text


def test_a_correction_replaces_the_printed_figure_and_keeps_its_qualifier():
    assert display_text("29,397,681 million", "exact", Decimal("29397681"), "count") == "29,397,681"
    assert display_text("20 million", "more_than", Decimal("20500000"), "count") == "more than 20.5 million"
    assert display_text("21.7 million", "more_than", None, "count") == "more than 21.7 million"
    assert display_text("", "exact", None, "count") is None


def test_the_figure_to_show_is_the_corrected_one_where_there_is_one():
    assert display_value(Decimal("29397681000000"), Decimal("29397681")) == Decimal("29397681")
    assert display_value(Decimal("5"), None) == Decimal("5")
    assert display_value(Decimal("5"), Decimal("0")) == Decimal("0")  # a correction to zero is still one
    assert display_value(None, None) is None
