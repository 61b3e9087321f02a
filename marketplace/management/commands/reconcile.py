from django.core.management.base import BaseCommand, CommandError

from marketplace.check_results import check_result_record
from marketplace.reconciliation import reconcile


class Command(BaseCommand):
    help = "Compare database holdings with on-chain balances; exit 1 when any differ."

    def handle(self, *args, **options):
        try:
            report = reconcile()
        except Exception as exc:
            raise CommandError(f"reconcile could not run: {exc}") from exc
        check_result_record("reconcile", len(report.mismatches))
        for line in report.skipped:
            self.stdout.write(f"skipped  {line}")
        for mismatch in report.mismatches:
            self.stdout.write(self.style.ERROR(f"MISMATCH {mismatch}"))
        summary = (
            f"{report.assets_checked} asset(s), {report.accounts_checked} account(s) checked, "
            f"{len(report.mismatches)} mismatch(es)"
        )
        if report.mismatches:
            self.stdout.write(self.style.ERROR(summary))
            raise SystemExit(1)
        self.stdout.write(self.style.SUCCESS(summary))
