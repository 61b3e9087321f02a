from django.core.management.base import BaseCommand

from marketplace.check_results import check_result_record
from marketplace.market_proofs import market_verify


class Command(BaseCommand):
    help = (
        "Prove the secondary market: no crossed book, reservations and locked units equal the open orders, "
        "filled + remaining = original, trades conserve cash and units, fees at the configured rates. Exit 1 otherwise."
    )

    def handle(self, *args, **options):
        report = market_verify()
        check_result_record("market_check", len(report.problems))
        for problem in report.problems:
            self.stdout.write(self.style.ERROR(f"PROBLEM {problem}"))
        summary = (
            f"{report.markets} markets, {report.orders} orders, {report.trades} trades checked, "
            f"{len(report.problems)} problem(s)"
        )
        if report.problems:
            self.stdout.write(self.style.ERROR(summary))
            raise SystemExit(1)
        self.stdout.write(self.style.SUCCESS(summary))
