"""Delete import previews older than a day: uploads nobody confirmed (serve runs it at start)."""

from django.core.management.base import BaseCommand

from stats.models import ImportPreview


class Command(BaseCommand):
    help = "Delete import previews that were not confirmed within a day."

    def handle(self, *args, **options):
        deleted, _ = ImportPreview.objects.expired().delete()
        self.stdout.write(f"deleted {deleted} expired import preview(s)")
