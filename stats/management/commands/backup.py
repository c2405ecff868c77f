"""Back up the whole warehouse to a file (pg_dump custom format)."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from stats.backups import BackupError, backup_create


class Command(BaseCommand):
    help = "Write the whole database (observations, history, imports, users) to FILE; restore it with `restore`."

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)

    def handle(self, *args, file: Path, **options):
        try:
            backup_create(path=file)
        except BackupError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"wrote {file} ({file.stat().st_size:,} bytes)")
