"""A live order book for `make run` (docs/trading.md): on the demo's EUR asset
(Harbourfront Offices), two verified demo investors buy units in the primary offering,
and once those purchases have settled on chain they rest asks at several prices while
investor@demo.rwa (and Otto) rest bids below them; then one buy and one sell cross the
spread, so the book shows trades that the worker settles on devnet.

It needs the worker running (the asset's mint opens the offering, the primary purchases
and the trades settle through the outbox), so scripts/run_embedded.py starts it after
the worker, in the background, and it waits (--wait seconds) for each step on chain.
Idempotent: deposits by bank reference, every order by a fixed idempotency key, so a
restart replays the same orders and changes nothing. Ends with `market_check`."""

from __future__ import annotations

import time

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from accounts.models import User
from assets.models import Asset
from marketplace.models import Deposit, Offering, PrimaryOrder, Trade, TradeOrder
from marketplace.services import deposit_record, order_place
from marketplace.trading import trade_order_place
from marketplace.trading_selectors import market_for_asset, order_book

ASSET_NAME = "Harbourfront Offices, Rotterdam"
CURRENCY = "EUR"
SELLERS = ["nora@demo.rwa", "otto@demo.rwa"]
DEPOSITS = [("DEMO-DEP-EUR-NORA", "nora@demo.rwa", 60_000_00), ("DEMO-DEP-EUR-OTTO", "otto@demo.rwa", 60_000_00)]
PRIMARY_UNITS = 120  # each seller's primary purchase (185.00 EUR a unit)

# (key, email, side, quantity, limit price in cents): resting orders first, then the two
# that cross the spread (one trade each, at the resting order's price).
ORDERS = [
    ("demo-book-ask-1", "nora@demo.rwa", "sell", 10, 186_00),
    ("demo-book-ask-2", "otto@demo.rwa", "sell", 15, 187_50),
    ("demo-book-ask-3", "nora@demo.rwa", "sell", 20, 189_00),
    ("demo-book-ask-4", "otto@demo.rwa", "sell", 8, 191_00),
    ("demo-book-bid-1", "investor@demo.rwa", "buy", 10, 184_00),
    ("demo-book-bid-2", "investor@demo.rwa", "buy", 12, 183_00),
    ("demo-book-bid-3", "otto@demo.rwa", "buy", 6, 182_00),
    ("demo-book-bid-4", "investor@demo.rwa", "buy", 20, 180_00),
    ("demo-book-cross-buy", "investor@demo.rwa", "buy", 4, 186_00),  # takes 4 of Nora's 186.00 ask
    ("demo-book-cross-sell", "nora@demo.rwa", "sell", 3, 184_00),  # hits Ivan's 184.00 bid
]
CROSSING = ("demo-book-cross-buy", "demo-book-cross-sell")


class Command(BaseCommand):
    help = "Seed a live order book on the demo EUR asset (needs the worker: waits for settlements on chain)."

    def add_arguments(self, parser):
        parser.add_argument("--wait", type=float, default=300, help="seconds to wait for each step on chain")

    def handle(self, *args, wait: float, **options):
        users = {u.email: u for u in User.objects.filter(email__in=[*SELLERS, "investor@demo.rwa", "admin@demo.rwa"])}
        if len(users) < 4:
            raise CommandError("Run `manage.py seed_demo` first.")
        asset = Asset.objects.filter(name=ASSET_NAME).first()
        if asset is None:
            raise CommandError("Run `manage.py seed_demo_assets` first.")
        self.deadline_s = wait

        # 1. The offering opens when the worker has minted the asset.
        offering = self._until(
            "the demo asset's offering to open (mint on devnet)",
            lambda: Offering.objects.filter(asset=asset, status=Offering.Status.OPEN).first(),
        )
        asset.refresh_from_db()  # live, with its ASA id, since the mint confirmed
        for reference, email, amount in DEPOSITS:
            if not Deposit.objects.filter(bank_reference=reference).exists():
                deposit_record(
                    investor=users[email],
                    amount_minor=amount,
                    currency=CURRENCY,
                    bank_reference=reference,
                    actor=users["admin@demo.rwa"],
                )

        # 2. The sellers' units: primary purchases, delivered on chain by the worker.
        for email in SELLERS:
            order_place(
                investor=users[email],
                offering_id=offering.pk,
                quantity=PRIMARY_UNITS,
                idempotency_key=f"demo-book-primary-{email.split('@')[0]}",
            )
        self._until(
            "the sellers' primary purchases to settle on chain",
            lambda: (
                not PrimaryOrder.objects.filter(
                    investor__email__in=SELLERS, idempotency_key__startswith="demo-book-primary-"
                )
                .exclude(status=PrimaryOrder.Status.SETTLED)
                .exists()
            ),
        )

        # 3. The book: resting levels on both sides, then two orders crossing the spread.
        placed = 0
        for key, email, side, quantity, price in ORDERS:
            order = trade_order_place(
                investor=users[email],
                asset=asset,
                side=side,
                quantity=quantity,
                limit_price_minor=price,
                time_in_force=TradeOrder.TimeInForce.GTC,
                idempotency_key=key,
            )
            placed += not getattr(order, "replayed", False)

        # 4. The worker delivers the trades (clawback transfers seller → buyer on devnet).
        trades = Trade.objects.filter(buy_order__idempotency_key__in=CROSSING) | Trade.objects.filter(
            sell_order__idempotency_key__in=CROSSING
        )
        self._until(
            "the demo trades to confirm on chain",
            lambda: trades.exists() and not trades.exclude(status=Trade.Status.CONFIRMED).exists(),
        )
        market = market_for_asset(asset=asset)
        assert market is not None  # opened by the first order above
        book = order_book(market=market)
        confirmed = trades.filter(chain_tx__confirmed_round__isnull=False).count()
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo order book on {asset.name}: {len(book.bids)} bid and {len(book.asks)} ask levels, "
                f"{confirmed} trades confirmed on devnet ({placed} orders placed now; "
                f"trade as nora@demo.rwa or otto@demo.rwa)."
            )
        )
        call_command("market_check", stdout=self.stdout)

    def _until(self, what: str, ready):
        deadline = time.monotonic() + self.deadline_s
        announced = False
        while not (value := ready()):
            if time.monotonic() > deadline:
                raise CommandError(f"Gave up after {self.deadline_s:.0f} s waiting for {what}; is the worker running?")
            if not announced:
                self.stdout.write(f"Demo order book: waiting for {what}...")
                announced = True
            time.sleep(1)
        return value
