"""Manage the embedded PostgreSQL that local mode runs (DATABASE_URL unset)."""

from django.core.management.base import BaseCommand, CommandError

from ncmec import localdb


class Command(BaseCommand):
    help = "The embedded PostgreSQL in .local/pgdata: status, start, stop, or print its URL."

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["status", "start", "stop", "url"])

    def handle(self, *args, action: str, **options):
        if action == "status":  # manage.py answers it without loading settings (which start the database)
            self.stdout.write(localdb.status())
        elif action == "start":
            self.stdout.write(f"running: {localdb.ensure_running().url}")
        elif action == "url":
            self.stdout.write(localdb.ensure_running().url)
        elif action == "stop":
            try:
                stopped = localdb.stop()
            except Exception as exc:
                raise CommandError(f"could not stop the embedded PostgreSQL: {exc}") from exc
            self.stdout.write("stopped" if stopped else "it was not running")
