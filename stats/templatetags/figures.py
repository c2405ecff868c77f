"""Template filters that show figures with the one wording of stats.display."""

from django import template

from stats import display

register = template.Library()


@register.filter
def printed(figure) -> str:
    """An observation or restatement as the document words it: "more than 21.7 million"."""
    return display.printed_text(figure.qualifier, figure.value_text)
