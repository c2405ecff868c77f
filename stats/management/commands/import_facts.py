"""Import observations in the long shape (one per row) through the validated import service."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from stats.importing import long_rows, read_dataset
from stats.lookups import CatalogLookup
from stats.models import ImportRecord
from stats.services.errors import ImportFailed
from stats.services.observations import file_checksum, observations_import


class Command(BaseCommand):
    help = "Import observations from a CSV, XLSX or JSON file, one per row. All or nothing."

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument("--dry-run", action="store_true", help="Validate and preview; write nothing.")
        parser.add_argument("--reason", default="", help="Why (required to change existing figures).")

    def handle(self, *args, file: Path, dry_run: bool, reason: str, **options):
        run_import(self, file, dry_run=dry_run, reason=reason, shape=ImportRecord.Shape.LONG,
                   to_rows=lambda dataset: long_rows(dataset, CatalogLookup.load()))  # fmt: skip


def run_import(command: BaseCommand, file: Path, *, dry_run: bool, reason: str, shape: str, to_rows, options=None):
    """Shared by import_facts and import_table: read, validate, preview or write, report."""
    if not file.is_file():
        raise CommandError(f"{file} does not exist")
    try:
        rows = to_rows(read_dataset(file, file.name))  # read as it is validated, never whole
        # The bar counts rows written (the file's row count is not known before it is read).
        with tqdm(unit="row", disable=file.stat().st_size < 1_000_000 or dry_run, file=command.stderr) as bar:
            result = observations_import(
                rows=rows, reason=reason, channel="cli", shape=shape, file_name=file.name,
                checksum=file_checksum(file), options=options or {}, dry_run=dry_run, progress=bar.update,
            )  # fmt: skip
    except ImportFailed as exc:
        raise CommandError(f"{file.name}: {exc}") from exc
    verb = "would import" if dry_run else "imported"
    command.stdout.write(
        f"{verb} {result.rows} figures from {file.name}: {result.new} new, {result.changed} changed, "
        f"{result.unchanged} unchanged"
    )
    for change in result.changes[:50]:
        diffs = ", ".join(
            f"{k} {change.before[k]!r} → {change.after[k]!r}"
            for k in change.after
            if change.before.get(k) != change.after[k]
        )
        command.stdout.write(f"  row {change.row}: observation #{change.observation_id}: {diffs}")
