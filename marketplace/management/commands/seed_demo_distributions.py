"""The income-distribution demo for `make run` (docs/distributions.md, "Demo"):

1. A paid distribution: November's rent of "Harbourfront Offices, Rotterdam" (EUR),
   declared by its issuer (issuer@demo.rwa), approved by a second person (admin@demo.rwa),
   funded by a deposit and paid to every holder at the record time: Nora, Otto and the
   demo investor from the demo order book, the issuer's treasury share, and Lena, who
   bought 40 fractions and whose KYC lapsed once they had settled, so her payout is HELD with the reason
   (compliance can release it in the back office once she renews).
2. An upcoming distribution: a quarter's gold-leasing interest on "LBMA Gold Lot 4471"
   (USD), approved and funded, record date in a week and payment in two, so the asset page
   and the investors' distributions page show it as upcoming.

Everything goes through the services (distribution_declare / _approve / _fund / _pay);
the lapse is the one direct change: Lena's approved KYC gets yesterday as its expiry, as
if a year had passed, made once her purchase has settled (before, the settlement's own
compliance check refused it: she was paid for units she never got). Runs after
seed_demo_book (it needs the book's holders; it does not need their purchases settled:
units count from the order). Idempotent: deposits by bank
reference, orders by idempotency key, distributions by their note. Ends with
`distribution_check` and `ledger_check`."""

from __future__ import annotations

import datetime
import time

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from accounts.models import User
from assets.models import Asset
from compliance.models import KycApplication
from marketplace import distributions as dist
from marketplace.models import Deposit, Distribution, Offering, PrimaryOrder
from marketplace.services import deposit_record, order_place

ISSUER, APPROVER = "issuer@demo.rwa", "admin@demo.rwa"
LAPSING = "lena@demo.rwa"
RENT_NOTE = "Demo: November rent, net of service charges"
GOLD_NOTE = "Demo: gold-leasing interest for the quarter"


class Command(BaseCommand):
    help = "Seed one paid distribution (with a held payout) and one upcoming distribution."

    def add_arguments(self, parser):
        parser.add_argument("--wait", type=float, default=600.0, help="Seconds to wait for the offerings to open.")

    def _offering(self, name: str, wait: float) -> Offering:
        deadline = time.monotonic() + wait
        while True:
            offering = Offering.objects.filter(asset__name=name, asset__status=Asset.Status.LIVE).first()
            if offering is not None:
                return offering
            if time.monotonic() > deadline:
                raise CommandError(f"{name} did not go live within {wait:.0f} s")
            time.sleep(2)

    def _settled(self, order: PrimaryOrder, wait: float) -> None:
        """Wait for the worker to settle the order (`make run` has one). Without a worker
        (a test), say so and go on after `wait` seconds."""
        deadline = time.monotonic() + wait
        while True:
            order.refresh_from_db()
            if order.status == PrimaryOrder.Status.SETTLED:
                return
            if order.status != PrimaryOrder.Status.RESERVED:
                raise CommandError(f"Lena's demo purchase did not settle: {order.get_status_display()}")
            if time.monotonic() > deadline:
                self.stderr.write(f"Lena's demo purchase is not settled after {wait:.0f} s; her KYC lapses anyway")
                return
            time.sleep(0.5)

    def handle(self, *args, **options):
        users = {u.email: u for u in User.objects.filter(email__in=[ISSUER, APPROVER, LAPSING])}
        if len(users) != 3:
            raise CommandError("Run `manage.py seed_demo` first.")
        issuer, approver, lena = users[ISSUER], users[APPROVER], users[LAPSING]
        harbour = self._offering("Harbourfront Offices, Rotterdam", options["wait"])
        gold = self._offering("LBMA Gold Lot 4471", options["wait"])

        # Lena buys, then her KYC lapses.
        if not Deposit.objects.filter(bank_reference="DEMO-DEP-EUR-LENA").exists():
            deposit_record(
                investor=lena,
                amount_minor=10_000_00,
                currency="EUR",
                bank_reference="DEMO-DEP-EUR-LENA",
                actor=approver,
            )
        order = order_place(investor=lena, offering_id=harbour.pk, quantity=40, idempotency_key="demo-dist-lena-buy")
        # Her KYC lapses only once the purchase has settled: the settlement's compliance check
        # (before signing) would refuse it otherwise, and she would be paid for units she never got.
        self._settled(order, options["wait"])
        KycApplication.objects.filter(user=lena, status=KycApplication.Status.APPROVED).update(
            expires_at=timezone.localdate() - datetime.timedelta(days=1)
        )

        today = timezone.localdate()
        rent = Distribution.objects.filter(asset=harbour.asset, note=RENT_NOTE).first()
        if rent is None:
            month_end = today.replace(day=1) - datetime.timedelta(days=1)
            rent = dist.distribution_declare(
                asset=harbour.asset,
                actor=issuer,
                kind=Distribution.Kind.RENT,
                gross_minor=77_083_33,
                currency="EUR",
                period_start=month_end.replace(day=1),
                period_end=month_end,
                record_at=timezone.now(),
                payment_date=today,
                note=RENT_NOTE,
            )
        self._approve_fund(rent, approver, "DEMO-RENT-HRBR")
        report = dist.distribution_pay(distribution=rent, actor=approver)
        rent.refresh_from_db()
        held = rent.payments.filter(status="held").count()
        self.stdout.write(
            f"Paid {rent}: {rent.payments.count()} shares ({report.paid} paid now, {held} held)"
            if not report.already_done
            else f"{rent}: already paid"
        )

        interest = Distribution.objects.filter(asset=gold.asset, note=GOLD_NOTE).first()
        if interest is None:
            interest = dist.distribution_declare(
                asset=gold.asset,
                actor=issuer,
                kind=Distribution.Kind.INTEREST,
                gross_minor=24_000_00,
                currency="USD",
                period_start=today - datetime.timedelta(days=90),
                period_end=today,
                record_at=timezone.now() + datetime.timedelta(days=7),
                payment_date=today + datetime.timedelta(days=14),
                note=GOLD_NOTE,
            )
        self._approve_fund(interest, approver, "DEMO-INT-GOLD")
        self.stdout.write(f"Upcoming: {interest} (record {timezone.localtime(interest.record_at):%Y-%m-%d %H:%M})")
        call_command("distribution_check", stdout=self.stdout)
        call_command("ledger_check", stdout=self.stdout)

    def _approve_fund(self, distribution: Distribution, approver, reference: str) -> None:
        distribution.refresh_from_db()
        if distribution.status == Distribution.Status.DECLARED:
            dist.distribution_approve(distribution=distribution, actor=approver)
            distribution.refresh_from_db()
        missing = distribution.gross_minor - distribution.funded_minor
        if missing and distribution.status == Distribution.Status.APPROVED:
            dist.distribution_fund(
                distribution=distribution,
                actor=approver,
                amount_minor=missing,
                source=dist.FUND_BY_DEPOSIT,
                bank_reference=reference,
            )
