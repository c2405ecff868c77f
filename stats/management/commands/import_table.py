"""Import a report table as printed (rows × columns with totals) through the validated import service."""

from pathlib import Path

from django.core.management.base import BaseCommand

from stats.importing import TableOptions, table_rows
from stats.management.commands.import_facts import add_settling_arguments, run_import
from stats.models import ImportRecord


class Command(BaseCommand):
    help = (
        "Import a table as the report prints it: row labels in the first column, one column per member of "
        "--columns (plus Total), a Total row. All or nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument("--indicator", required=True, help="Indicator code, e.g. missing.cases.")
        parser.add_argument("--year", type=int, required=True)
        parser.add_argument("--source", required=True, help="Source slug, e.g. impact-2025.")
        parser.add_argument("--rows", required=True, help="Dimension down the side, e.g. state.")
        parser.add_argument("--columns", help="Dimension across the top, e.g. case_status.")
        parser.add_argument("--title", default="", help="The table's printed title.")
        parser.add_argument("--dry-run", action="store_true", help="Validate and preview; write nothing.")
        parser.add_argument("--reason", default="", help="Why (required to change existing figures).")
        add_settling_arguments(parser)

    def handle(self, *args, file: Path, **options):
        table = TableOptions(
            indicator=options.pop("indicator"), year=options.pop("year"), source=options.pop("source"),
            rows=options.pop("rows"), columns=options.pop("columns"), title=options.pop("title"),
        )  # fmt: skip
        run_import(
            self, file, shape=ImportRecord.Shape.TABLE, to_rows=lambda dataset: table_rows(dataset, table),
            table=vars(table), **options,
        )  # fmt: skip
