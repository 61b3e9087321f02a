"""Demo cash for `make run`: the verified demo investor gets a deposit in each currency
of the demo assets, recorded by the demo admin through the real service (so the ledger
and the audit log are what production would produce). Idempotent by bank reference.
Offerings are not created here: they open when the worker confirms each asset's mint."""

from django.core.management.base import BaseCommand, CommandError

from accounts.models import User
from marketplace.models import Deposit
from marketplace.services import deposit_record

DEMO_DEPOSITS = [
    ("DEMO-DEP-EUR-0001", 50_000_00, "EUR"),
    ("DEMO-DEP-USD-0001", 50_000_00, "USD"),
]


class Command(BaseCommand):
    help = "Record demo deposits for investor@demo.rwa."

    def handle(self, *args, **options):
        investor = User.objects.filter(email="investor@demo.rwa").first()
        staff = User.objects.filter(email="admin@demo.rwa").first()
        if investor is None or staff is None:
            raise CommandError("Run `manage.py seed_demo` first.")
        for reference, amount, currency in DEMO_DEPOSITS:
            if not Deposit.objects.filter(bank_reference=reference).exists():
                deposit_record(
                    investor=investor, amount_minor=amount, currency=currency, bank_reference=reference, actor=staff
                )
        self.stdout.write(
            self.style.SUCCESS(
                "Demo cash: investor@demo.rwa has "
                + ", ".join(f"{a // 100:,} {c}" for _, a, c in DEMO_DEPOSITS)
                + " deposited (see /market/portfolio/)."
            )
        )
