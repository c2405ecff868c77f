"""Errors the services raise: each names what is wrong and where."""

from __future__ import annotations

from dataclasses import dataclass


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
        return f"{', '.join(where)}: {self.message}" if where else self.message


class ImportFailed(Exception):
    """An import had invalid rows; nothing was written."""

    def __init__(self, errors: list[RowError], record=None) -> None:
        self.errors = errors
        self.record = record
        shown = "\n".join(f"  {e}" for e in errors[:50])
        more = f"\n  ... and {len(errors) - 50} more" if len(errors) > 50 else ""
        super().__init__(f"{len(errors)} invalid row(s), nothing was imported:\n{shown}{more}")


class ConflictError(Exception):
    """Someone else changed the object since the caller read it."""


class BusyError(Exception):
    """The write waited too long for another one (an import, usually); trying again shortly works."""
