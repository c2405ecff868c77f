"""Compare every printed total with the sum of its parts; fail on an unexplained mismatch."""

from django.core.management.base import BaseCommand, CommandError

from stats.checks import mismatches, total_checks, warehouse_facts


class Command(BaseCommand):
    help = (
        "Check that every printed table's parts add up to its printed totals. Lists each mismatch; "
        "exits non-zero when one is not explained by a data-quality flag or correction."
    )

    def add_arguments(self, parser):
        parser.add_argument("--source", help="Only this source (slug).")

    def handle(self, *args, source=None, **options):
        from stats.models import Observation

        queryset = Observation.objects.all()
        if source:
            queryset = queryset.filter(source__slug=source)
        checks = total_checks(warehouse_facts(queryset))
        unexplained, explained = mismatches(checks)
        self.stdout.write(f"{len(checks)} totals checked, {len(explained) + len(unexplained)} do not add up")
        for check in explained:
            flags = ", ".join(sorted({f.flag or "corrected" for f in check.explained_by}))
            fixed = "; balanced by the corrections" if check.balanced_after_corrections else ""
            self.stdout.write(f"  explained ({flags}{fixed}): {check}")
        for check in unexplained:
            self.stdout.write(self.style.ERROR(f"  UNEXPLAINED: {check}"))
        if unexplained:
            raise CommandError(f"{len(unexplained)} unexplained total mismatch(es)")
        self.stdout.write(self.style.SUCCESS("every mismatch is explained by a flag or correction"))
