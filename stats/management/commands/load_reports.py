"""Load the published reports in fixtures/ into the warehouse (idempotent)."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from stats.services.errors import ImportFailed
from stats.services.reports import FIXTURES_DIR, reports_load


class Command(BaseCommand):
    help = "Load the published report data (fixtures/catalog.yaml and fixtures/sources/*.yaml)."

    def add_arguments(self, parser):
        parser.add_argument("--directory", type=Path, default=FIXTURES_DIR, help="Fixtures folder.")
        parser.add_argument("--dry-run", action="store_true", help="Validate and count; write nothing.")

    def handle(self, *args, directory: Path, dry_run: bool, **options):
        if not (directory / "catalog.yaml").exists():
            raise CommandError(f"{directory / 'catalog.yaml'} does not exist")
        try:
            result = reports_load(directory=directory, dry_run=dry_run)
        except ImportFailed as exc:
            raise CommandError(str(exc)) from exc
        obs = result.observations
        verb = "would load" if dry_run else "loaded"
        self.stdout.write(
            f"{verb} {len(result.sources)} sources, {result.catalog.get('indicators', 0)} indicators, "
            f"{result.catalog.get('members', 0)} members; observations: {obs.new} new, {obs.changed} changed, "
            f"{obs.unchanged} unchanged ({obs.restatements} restatements)"
        )
