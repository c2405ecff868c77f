"""Delete import previews older than a day: uploads nobody confirmed (serve runs it at start)."""

from django.core.management.base import BaseCommand

from stats.models import ImportPreview


class Command(BaseCommand):
    help = "Delete import previews that were not confirmed within a day."

    def handle(self, *args, **options):
        _, by_model = ImportPreview.objects.expired().delete()  # their parts go with them
        self.stdout.write(f"deleted {by_model.get(ImportPreview._meta.label, 0)} expired import preview(s)")
