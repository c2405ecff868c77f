"""Errors the services raise: each names what is wrong and where."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

# Control characters and unpaired surrogates a file may hold: shown escaped, never stored raw (PostgreSQL's
# text and JSON refuse NUL; a terminal or page would hide them).
_UNPRINTABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")


def visible(text: str) -> str:
    """``text`` with control characters and unpaired surrogates written as escapes (``\\x00``)."""
    return _UNPRINTABLE.sub(lambda m: f"\\x{ord(m[0]):02x}" if ord(m[0]) < 256 else f"\\u{ord(m[0]):04x}", text)


@dataclass(frozen=True)
class RowError:
    """One problem in one row of an import: ``row 14, column "state": unknown member ...``."""

    row: int | str | None
    column: str | None
    message: str

    def __str__(self) -> str:
        where = []
        if self.row is not None:
            where.append(f"row {self.row}" if isinstance(self.row, int) else str(self.row))
        if self.column:
            where.append(f'column "{self.column}"')
        return visible(f"{', '.join(where)}: {self.message}" if where else self.message)


_SPECIFIC = re.compile(r"\"[^\"]*\"|'[^']*'|-?\d[\d,.]*")


def error_kind(error: RowError) -> str:
    """What an error is, without the row's own values: ``column "state": unknown member … of dimension state``."""
    message = _SPECIFIC.sub("…", error.message)
    return f'column "{error.column}": {message}' if error.column else message


@dataclass(frozen=True)
class ErrorSummary:
    """The first errors as they are, the rest counted by kind: a page (or a terminal) stays readable."""

    listed: list[RowError]
    more: list[tuple[str, int]]  # (kind, count) of the errors not listed, commonest first
    total: int

    @property
    def unlisted(self) -> int:
        return self.total - len(self.listed)

    def lines(self) -> list[str]:
        lines = [str(e) for e in self.listed]
        if self.more:
            lines.append(f"... and {self.unlisted:,} more:")
            lines += [f"  {count:,} × {kind}" for kind, count in self.more]
        return lines


def error_summary(errors: list[RowError], limit: int = 200) -> ErrorSummary:
    """At most ``limit`` errors listed, then counts by kind (a 40,000-row file of bad rows is one page)."""
    kinds = Counter(error_kind(e) for e in errors[limit:])
    return ErrorSummary(listed=list(errors[:limit]), more=kinds.most_common(), total=len(errors))


class ImportFailed(Exception):
    """An import had invalid rows; nothing was written."""

    def __init__(self, errors: list[RowError], record=None) -> None:
        self.errors = errors
        self.record = record
        shown = "\n".join(f"  {line}" for line in error_summary(errors, limit=50).lines())
        super().__init__(f"{len(errors)} error(s), nothing was imported:\n{shown}")


class ConflictError(Exception):
    """Someone else changed the object since the caller read it."""


class BusyError(Exception):
    """The write waited too long for another one (an import, usually); trying again shortly works."""
