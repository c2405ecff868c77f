"""The same warning over and over is one log line per interval (ncmec.logfilters)."""

import logging

from ncmec.logfilters import RepeatedWarnings


def record(message: str, level: int = logging.WARNING) -> logging.LogRecord:
    return logging.LogRecord("django.request", level, __file__, 1, "%s: %s", ("Bad Request", message), None)


def test_repeats_within_the_interval_are_dropped_and_counted():
    repeated = RepeatedWarnings(seconds=60)
    assert repeated.filter(record("/graphql"))
    assert [repeated.filter(record("/graphql")) for _ in range(1000)] == [False] * 1000
    assert repeated.filter(record("/admin/"))  # another message passes
    assert repeated.filter(record("/graphql", logging.ERROR))  # errors always pass


def test_the_next_one_after_the_interval_says_how_many_were_dropped():
    now = [0.0]
    repeated = RepeatedWarnings(seconds=60, clock=lambda: now[0])
    assert repeated.filter(record("/graphql"))
    now[0] = 59.0
    assert not repeated.filter(record("/graphql"))
    assert not repeated.filter(record("/graphql"))
    now[0] = 60.0
    later = record("/graphql")
    assert repeated.filter(later)
    assert later.getMessage() == "Bad Request: /graphql (2 more like it not logged)"
    assert not repeated.filter(record("/graphql"))
