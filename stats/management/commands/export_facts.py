"""Write the whole warehouse as one flat table (CSV, JSON or XLSX)."""

import codecs
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from stats.exports import write_facts


class Command(BaseCommand):
    help = "Export every observation as one flat table: the open-data download."

    def add_arguments(self, parser):
        parser.add_argument("--format", choices=["csv", "json", "xlsx"], default="csv")
        parser.add_argument(
            "--output",
            type=Path,
            help="File to write (default: standard output; xlsx needs a file).",
        )
        parser.add_argument("--preferred-only", action="store_true", help="Only the preferred source per fact.")

    def handle(self, *args, format: str, output: Path | None, preferred_only: bool, **options):
        # Written as read from the database: memory stays flat however many observations there are.
        if output is None:
            binary = getattr(self.stdout, "buffer", None)  # None when standard output is a text stream
            if binary is None and format == "xlsx":
                raise CommandError("xlsx needs a file: give --output")
            write_facts(binary or _Text(self.stdout), format, preferred_only=preferred_only)
            return
        with output.open("wb") as handle:
            write_facts(handle, format, preferred_only=preferred_only)
        self.stderr.write(f"wrote {output}")


class _Text:
    """A binary sink over a text stream (standard output replaced by a text buffer, as in tests)."""

    def __init__(self, stream) -> None:
        self.stream = stream
        self.decoder = codecs.getincrementaldecoder("utf-8")()

    def write(self, data: bytes) -> None:
        self.stream.write(self.decoder.decode(data), ending="")
