"""Restore the whole warehouse from a `backup` file, replacing what is there."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from stats.backups import BackupError, backup_restore


class Command(BaseCommand):
    help = "Replace the database's contents with a backup FILE, in one transaction (nothing changes on failure)."

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument("--yes", action="store_true", help="Do not ask for confirmation.")

    def handle(self, *args, file: Path, yes: bool, **options):
        if not yes:
            answer = input(f"Replace everything in the database with {file}? Type 'yes': ")
            if answer.strip().lower() != "yes":
                raise CommandError("restore cancelled")
        try:
            backup_restore(path=file)
        except BackupError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"restored {file}")
