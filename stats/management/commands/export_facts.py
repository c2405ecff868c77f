"""Write the whole warehouse as one flat table (CSV, JSON or XLSX)."""

import sys
from pathlib import Path

from django.core.management.base import BaseCommand

from stats.exports import facts_dataset


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
        from stats.models import Observation

        queryset = Observation.objects.preferred() if preferred_only else Observation.objects.all()
        data = facts_dataset(queryset).export(format)
        if output is None:
            if isinstance(data, bytes):
                sys.stdout.buffer.write(data)
            else:
                self.stdout.write(data, ending="")
            return
        output.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
        self.stderr.write(f"wrote {output}")
