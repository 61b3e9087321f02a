from django.core.management.base import BaseCommand

from marketplace.check_results import check_result_record
from marketplace.ledger_proofs import ledger_verify


class Command(BaseCommand):
    help = "Prove the cash ledger: every journal balances per currency, every balance equals its postings, none negative. Exit 1 otherwise."

    def handle(self, *args, **options):
        report = ledger_verify()
        check_result_record("ledger_check", len(report.problems))
        for problem in report.problems:
            self.stdout.write(self.style.ERROR(f"PROBLEM {problem}"))
        summary = (
            f"{report.entries} journal entries, {report.accounts} accounts checked, {len(report.problems)} problem(s)"
        )
        if report.problems:
            self.stdout.write(self.style.ERROR(summary))
            raise SystemExit(1)
        self.stdout.write(self.style.SUCCESS(summary))
