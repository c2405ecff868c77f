"""Load the published reports in fixtures/ into the warehouse (idempotent; staff corrections stay)."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from stats.models import Observation
from stats.services.errors import ImportFailed
from stats.services.reports import FIXTURES_DIR, reports_load


class Command(BaseCommand):
    help = (
        "Load the published report data (fixtures/catalog.yaml and fixtures/sources/*.yaml). Figures staff "
        "changed since they were loaded are kept and listed; figures no longer in fixtures/ are listed."
    )

    def add_arguments(self, parser):
        parser.add_argument("--directory", type=Path, default=FIXTURES_DIR, help="Fixtures folder.")
        parser.add_argument("--dry-run", action="store_true", help="Validate and count; write nothing.")
        parser.add_argument(
            "--if-empty", action="store_true", help="Load only into an empty warehouse (container start)."
        )
        parser.add_argument(
            "--remove-missing",
            action="store_true",
            help="Delete stored figures of these sources that fixtures/ no longer prints (never one staff changed).",
        )
        parser.add_argument(
            "--strict",
            action="store_true",
            help="Exit with an error when a figure differs from fixtures/ and was left alone.",
        )

    def handle(self, *args, directory: Path, dry_run: bool, if_empty: bool, remove_missing: bool, strict: bool,
               **options):  # fmt: skip
        if if_empty and Observation.objects.exists():
            self.stdout.write("the warehouse holds data: published reports not loaded (--if-empty)")
            return
        if not (directory / "catalog.yaml").exists():
            raise CommandError(f"{directory / 'catalog.yaml'} does not exist")
        try:
            result = reports_load(directory=directory, dry_run=dry_run, remove_missing=remove_missing)
        except ImportFailed as exc:
            raise CommandError(str(exc)) from exc
        obs = result.observations
        verb = "would load" if dry_run else "loaded"
        self.stdout.write(
            f"{verb} {len(result.sources)} sources, {result.catalog.get('indicators', 0)} indicators, "
            f"{result.catalog.get('members', 0)} members; observations: {obs.new} new, {obs.changed} changed, "
            f"{obs.unchanged} unchanged ({obs.restatements} restatements), {len(obs.kept)} kept as staff changed "
            f"them, {len(result.removed)} removed"
        )
        left_alone = result.left_alone
        for line in left_alone:
            self.stdout.write(f"  {line}")
        if strict and left_alone:
            raise CommandError(f"{len(left_alone)} figure(s) differ from fixtures/ and were left alone (--strict)")
