from django.core.management.base import BaseCommand

from marketplace.check_results import check_result_record
from marketplace.distribution_proofs import distribution_verify


class Command(BaseCommand):
    help = (
        "Prove every distribution that started paying: Σ net + Σ withheld + Σ held = gross exactly, each "
        "entitlement equals its recomputation from the unit history at the record date, nobody paid twice, "
        "the books agree. Exit 1 otherwise."
    )

    def handle(self, *args, **options):
        report = distribution_verify()
        check_result_record("distribution_check", len(report.problems))
        for problem in report.problems:
            self.stdout.write(self.style.ERROR(f"PROBLEM {problem}"))
        summary = (
            f"{report.distributions} distributions, {report.payments} shares checked, {len(report.problems)} problem(s)"
        )
        if report.problems:
            self.stdout.write(self.style.ERROR(summary))
            raise SystemExit(1)
        self.stdout.write(self.style.SUCCESS(summary))
