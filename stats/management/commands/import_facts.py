"""Import observations in the long shape (one per row) through the validated import service."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from stats.importing import long_rows, read_dataset
from stats.lookups import CatalogLookup
from stats.models import ImportRecord
from stats.services.errors import ImportFailed, error_summary
from stats.services.observations import file_checksum, observations_import


class Command(BaseCommand):
    help = "Import observations from a CSV, XLSX or JSON file, one per row. All or nothing."

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument("--dry-run", action="store_true", help="Validate and preview; write nothing.")
        parser.add_argument("--reason", default="", help="Why (required to change existing figures).")
        add_settling_arguments(parser)

    def handle(self, *args, file: Path, **options):
        run_import(self, file, shape=ImportRecord.Shape.LONG,
                   to_rows=lambda dataset: long_rows(dataset, CatalogLookup.load()), **options)  # fmt: skip


def add_settling_arguments(parser) -> None:
    """What an import must settle before it is written, as the admin's preview asks it."""
    parser.add_argument(
        "--flag-sum-mismatch", metavar="NOTE", default="",
        help="Store totals whose parts do not add up as printed, flagged as a sum mismatch with this note.",
    )  # fmt: skip
    parser.add_argument(
        "--confirm-years-outside-edition", action="store_true",
        help="Confirm figures for years other than their source's edition.",
    )  # fmt: skip


def run_import(command: BaseCommand, file: Path, *, dry_run: bool, reason: str, shape: str, to_rows, table=None,
               flag_sum_mismatch: str = "", confirm_years_outside_edition: bool = False, **options):  # fmt: skip
    """Shared by import_facts and import_table: read, validate, preview or write, report."""
    if not file.is_file():
        raise CommandError(f"{file} does not exist")
    data = file.read_bytes()
    try:
        rows = to_rows(read_dataset(data, file.name))
        with tqdm(total=len(rows), unit="row", disable=len(rows) < 10_000 or dry_run, file=command.stderr) as bar:
            result = observations_import(
                rows=rows, reason=reason, channel="cli", shape=shape, file_name=file.name,
                checksum=file_checksum(data), options=table or {}, dry_run=dry_run, progress=bar.update,
                sum_mismatch_note=flag_sum_mismatch, confirm_years_outside_edition=confirm_years_outside_edition,
            )  # fmt: skip
    except ImportFailed as exc:
        lines = "\n".join(f"  {line}" for line in error_summary(exc.errors, limit=200).lines())
        raise CommandError(f"{file.name}: {len(exc.errors)} error(s), nothing was imported:\n{lines}") from exc
    verb = "would import" if dry_run else "imported"
    flagged = f", {result.flagged} flagged as a sum mismatch" if result.flagged else ""
    command.stdout.write(
        f"{verb} {result.rows} figures from {file.name}: {result.new} new, {result.changed} changed, "
        f"{result.unchanged} unchanged{flagged}"
    )
    for check in result.mismatches:
        command.stdout.write(f"  does not add up (settle with --flag-sum-mismatch NOTE, or fix the file): {check}")
    for slug, (edition, years) in result.years_outside_edition.items():
        if not confirm_years_outside_edition:
            command.stdout.write(f"  {slug} reports on {edition}; figures for {', '.join(map(str, years))} "
                                 "(confirm with --confirm-years-outside-edition)")  # fmt: skip
    for change in result.changes[:50]:
        diffs = ", ".join(
            f"{k} {change.before[k]!r} → {change.after[k]!r}"
            for k in change.after
            if change.before.get(k) != change.after[k]
        )
        command.stdout.write(f"  row {change.row}: observation #{change.observation_id}: {diffs}")
