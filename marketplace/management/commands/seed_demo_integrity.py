"""The market-integrity demo for `make run` (docs/market-integrity.md, "Demo"):

1. An asset in auction mode: on "LBMA Gold Lot 4471" (USD) Nora and Otto buy units in the
   primary offering; once those purchases have settled on chain, staff (admin@demo.rwa)
   switch the book to periodic call auctions (daily at 15:00 Europe/London, through
   `market_controls_update`) and bids (investor@demo.rwa) and asks (Nora, Otto) rest on
   both sides and cross, so the trade page shows an indicative clearing price and volume
   and the next auction time. The auction itself is left to Celery beat.
2. An asset with a price history: on "Blue Composition (1962)" (USD) staff publish three
   valuations (each with a generated PDF report added to the asset's data room), then
   --days trading days (weekdays, ending before today) of trades are placed through
   `trade_order_place`: each trade is a resting sell crossed by a buy at the same price,
   prices a seeded random walk of a few % a day that stays inside the price band.

THE HISTORY'S CLOCK IS TRAVELLED: to stamp each trade on its past day, the process's
clock is moved (time-machine) to that day only around each `trade_order_place` call.
Everything else is real: the orders, matching, ledger, fees and eligibility run through
the real services, and the worker settles every trade on devnet in real time (a trade
made "on 3 March" confirms in a round of today). The valuations are published now with
past as-of dates (their documents are uploaded now, after listing, as in production).

It needs the worker (mints open the offerings, purchases and trades settle through the
outbox), so scripts/run_embedded.py starts it in the background after seed_demo_book;
it waits (--wait seconds) for each step on chain. Idempotent: deposits by bank
reference, every order by a fixed idempotency key, valuations by their note; the
history's dates are anchored on the first valuation, so a run on a later day replays the
same orders and changes nothing. Ends with `market_check` (raises on a problem)."""

from __future__ import annotations

import datetime
import random
import time
from dataclasses import dataclass

import time_machine
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from accounts.models import User
from assets import services as asset_services
from assets.demo_documents import pdf_document
from assets.models import Asset, AssetDocument
from config.uploads import validate_upload
from marketplace.auction import indicative_auction
from marketplace.market_controls import market_controls_update
from marketplace.models import Deposit, Market, Offering, PrimaryOrder, Trade, TradeOrder, Valuation
from marketplace.services import deposit_record, order_place
from marketplace.trading import market_open, trade_order_place
from marketplace.trading_selectors import order_book
from marketplace.valuations import valuation_publish

UTC = datetime.UTC
CURRENCY = "USD"
ADMIN = "admin@demo.rwa"
INVESTOR = "investor@demo.rwa"
TRADERS = ["nora@demo.rwa", "otto@demo.rwa"]
DEPOSITS = [
    ("DEMO-INT-USD-NORA", "nora@demo.rwa", 180_000_00),
    ("DEMO-INT-USD-OTTO", "otto@demo.rwa", 180_000_00),
    ("DEMO-INT-USD-IVAN", INVESTOR, 100_000_00),
]

# -- 1. the auction book ----------------------------------------------------------------
AUCTION_ASSET = "LBMA Gold Lot 4471"
AUCTION_PRIMARY_UNITS = 60  # each trader's purchase (400.00 USD a unit)
AUCTION_CONTROLS = {
    "trading_mode": Market.TradingMode.AUCTION,
    "auction_times": ["15:00"],
    "time_zone": "Europe/London",
}
# (key, email, side, quantity, limit price in cents): they rest without matching and
# cross: the indicative uncrossing is 15 units at 403.50.
AUCTION_ORDERS = [
    ("demo-int-auction-ask-1", "nora@demo.rwa", "sell", 6, 401_00),
    ("demo-int-auction-ask-2", "otto@demo.rwa", "sell", 9, 403_50),
    ("demo-int-auction-ask-3", "nora@demo.rwa", "sell", 8, 406_00),
    ("demo-int-auction-ask-4", "otto@demo.rwa", "sell", 5, 410_00),
    ("demo-int-auction-bid-1", INVESTOR, "buy", 7, 405_00),
    ("demo-int-auction-bid-2", INVESTOR, "buy", 8, 403_50),
    ("demo-int-auction-bid-3", INVESTOR, "buy", 6, 400_00),
    ("demo-int-auction-bid-4", INVESTOR, "buy", 10, 396_00),
]

# -- 2. the price history ---------------------------------------------------------------
CHART_ASSET = "Blue Composition (1962)"
CHART_PRIMARY_UNITS = 100  # each trader's purchase (1,000.00 USD a unit; the most per purchase)
CHART_DAYS = 40
SEED = 1962
START_PRICE = 1_000_00
DAILY_STEP_PCT = 3.0  # at most this much from one trade to the next (the band is ±20 %)
# (where in the history: None the day before its first trading day, else that share of
# its trading days; value per fraction; note, which also identifies it on a second run)
VALUATIONS = [
    (None, 1_000_00, "Demo valuation 1 of 3: appraisal at listing."),
    (0.45, 1_060_00, "Demo valuation 2 of 3: interim appraisal."),
    (0.9, 1_020_00, "Demo valuation 3 of 3: quarterly appraisal."),
]


@dataclass(frozen=True)
class PlannedTrade:
    day_index: int
    number: int
    at: datetime.datetime
    seller: str
    buyer: str
    quantity: int
    price_minor: int

    @property
    def keys(self) -> tuple[str, str]:
        base = f"demo-int-chart-{self.day_index:03d}-{self.number}"
        return f"{base}-sell", f"{base}-buy"


def weekdays_before(today: datetime.date, count: int) -> list[datetime.date]:
    days: list[datetime.date] = []
    day = today
    while len(days) < count:
        day -= datetime.timedelta(days=1)
        if day.weekday() < 5:
            days.append(day)
    return days[::-1]


def weekdays_from(start: datetime.date, count: int) -> list[datetime.date]:
    days: list[datetime.date] = []
    day = start
    while len(days) < count:
        if day.weekday() < 5:
            days.append(day)
        day += datetime.timedelta(days=1)
    return days


def history_plan(days: list[datetime.date]) -> list[PlannedTrade]:
    """The trades of each day (1 to 3, at 10:00, 12:30 and 14:45 UTC; 1 or 2 units), a
    seeded random walk of at most DAILY_STEP_PCT a trade. Day i's draws depend on i
    only, so the plan of a shorter history is a prefix of a longer one's."""
    plan: list[PlannedTrade] = []
    price = START_PRICE
    times = [(10, 0), (12, 30), (14, 45)]
    for i, day in enumerate(days):
        rng = random.Random(f"{SEED}-{i}")
        for n in range(rng.choice([1, 2, 2, 3])):
            step = rng.uniform(-DAILY_STEP_PCT, DAILY_STEP_PCT) / 100
            step += 0.002 if price < START_PRICE else -0.001  # a slight pull back to the appraisal
            price = max(1, round(price * (1 + step)))
            seller = TRADERS[(i + n) % 2]
            buyer = INVESTOR if n == 0 else TRADERS[(i + n + 1) % 2]
            hour, minute = times[n]
            at = datetime.datetime.combine(day, datetime.time(hour, minute), UTC)
            plan.append(PlannedTrade(i, n, at, seller, buyer, rng.choice([1, 1, 2]), price))
    return plan


def band_check(plan: list[PlannedTrade], *, pct: int) -> None:
    """Each trade's price lies within the band around the one before (its reference:
    the last trade, at most 3 days earlier), with a point to spare for rounding."""
    for before, trade in zip(plan, plan[1:], strict=False):
        if abs(trade.price_minor - before.price_minor) * 100 > (pct - 1) * before.price_minor:
            raise CommandError(f"The planned history leaves the ±{pct} % band on {trade.at:%Y-%m-%d}.")


class Command(BaseCommand):
    help = (
        "Seed the market-integrity demo: an asset in auction mode with orders on both sides, and an asset "
        "with a price history (clock travelled per trade; settled on devnet by the worker) and valuations."
    )

    def add_arguments(self, parser):
        parser.add_argument("--wait", type=float, default=600, help="seconds to wait for each step on chain")
        parser.add_argument("--days", type=int, default=CHART_DAYS, help="trading days of price history")

    def handle(self, *args, wait: float, days: int, **options):
        if not 1 <= days <= 250:
            raise CommandError("--days must be between 1 and 250.")
        started = time.perf_counter()
        self.deadline_s = wait
        users = {u.email: u for u in User.objects.filter(email__in=[*TRADERS, INVESTOR, ADMIN])}
        if len(users) < 4:
            raise CommandError("Run `manage.py seed_demo` first.")
        assets = {a.name: a for a in Asset.objects.filter(name__in=[AUCTION_ASSET, CHART_ASSET])}
        if len(assets) < 2:
            raise CommandError("Run `manage.py seed_demo_assets` first.")
        admin = users[ADMIN]

        # 1. The offerings open when the worker has minted the assets.
        offerings = {
            name: self._until(
                f"the offering of {name} to open (mint on devnet)",
                lambda name=name: Offering.objects.filter(asset=assets[name], status=Offering.Status.OPEN).first(),
            )
            for name in (AUCTION_ASSET, CHART_ASSET)
        }
        for asset in assets.values():
            asset.refresh_from_db()  # live, with its ASA id
        for reference, email, amount in DEPOSITS:
            if not Deposit.objects.filter(bank_reference=reference).exists():
                deposit_record(
                    investor=users[email], amount_minor=amount, currency=CURRENCY, bank_reference=reference, actor=admin
                )

        # 2. The traders' units: primary purchases, delivered on chain by the worker.
        for name, units, tag in (
            (AUCTION_ASSET, AUCTION_PRIMARY_UNITS, "gold"),
            (CHART_ASSET, CHART_PRIMARY_UNITS, "blue"),
        ):
            for email in TRADERS:
                order_place(
                    investor=users[email],
                    offering_id=offerings[name].pk,
                    quantity=units,
                    idempotency_key=f"demo-int-primary-{tag}-{email.split('@')[0]}",
                )
        self._until(
            "the traders' primary purchases to settle on chain",
            lambda: (
                not PrimaryOrder.objects.filter(idempotency_key__startswith="demo-int-primary-")
                .exclude(status=PrimaryOrder.Status.SETTLED)
                .exists()
            ),
        )

        # 3. The price history, after the valuations it is drawn beside.
        chart = assets[CHART_ASSET]
        chart_market = market_open(asset=chart)
        start = self._valuations(chart, admin=admin, days=days)
        plan = history_plan(weekdays_from(start, days))
        band_check(plan, pct=chart_market.band_pct or settings.MARKETPLACE_PRICE_BAND_PCT)
        placed = self._history(chart, plan, users)

        # 4. The auction book: auction mode first (nothing matches), then both sides.
        gold = assets[AUCTION_ASSET]
        gold_market = market_controls_update(
            market=market_open(asset=gold),
            actor=admin,
            fields=AUCTION_CONTROLS,
            reason="Demo: a thin book trades in a daily call auction at 15:00 London time.",
        )
        for key, email, side, quantity, price in AUCTION_ORDERS:
            order = trade_order_place(
                investor=users[email],
                asset=gold,
                side=side,
                quantity=quantity,
                limit_price_minor=price,
                time_in_force=TradeOrder.TimeInForce.GTC,
                idempotency_key=key,
            )
            placed += not getattr(order, "replayed", False)

        # 5. The worker settles the history's trades on devnet.
        keys = [key for trade in plan for key in trade.keys]
        trades = Trade.objects.filter(market=chart_market, buy_order__idempotency_key__in=keys)
        self._until(
            f"the {len(plan)} trades of the price history to confirm on chain",
            lambda: trades.count() == len(plan) and not trades.exclude(status=Trade.Status.CONFIRMED).exists(),
        )

        gold_market.refresh_from_db()
        book = order_book(market=gold_market)
        indicative = indicative_auction(gold_market)
        confirmed = trades.filter(chain_tx__confirmed_round__isnull=False).count()
        first, last = plan[0].at.date(), plan[-1].at.date()
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo auction book on {gold.name}: {len(book.bids)} bid and {len(book.asks)} ask levels, "
                f"indicative {indicative.volume} units at {(indicative.price_minor or 0) / 100:.2f} {CURRENCY}, "
                f"next auction {gold_market.next_auction_at:%Y-%m-%d %H:%M} UTC.\n"
                f"Demo price history on {chart.name}: {len(plan)} trades on {days} trading days "
                f"({first:%d %b} to {last:%d %b %Y}, clock travelled), {confirmed} confirmed on devnet; "
                f"{Valuation.objects.filter(asset=chart, status=Valuation.Status.PUBLISHED).count()} valuations "
                f"({placed} orders placed now, {time.perf_counter() - started:.0f} s)."
            )
        )
        call_command("market_check", stdout=self.stdout)

    # -- steps ---------------------------------------------------------------------------

    def _valuations(self, asset: Asset, *, admin, days: int) -> datetime.date:
        """Publish the VALUATIONS (now, with past as-of dates); returns the history's
        first trading day, anchored on the first valuation once it exists."""
        existing = dict(
            Valuation.objects.filter(asset=asset, note__in=[note for _, _, note in VALUATIONS]).values_list(
                "note", "as_of"
            )
        )
        anchor = existing.get(VALUATIONS[0][2])
        if anchor is not None:
            start = anchor + datetime.timedelta(days=1)
        else:
            start = weekdays_before(timezone.now().astimezone(UTC).date(), days)[0]
        trading_days = weekdays_from(start, days)
        for share, value, note in VALUATIONS:
            if note in existing:
                continue
            if share is None:
                as_of = start - datetime.timedelta(days=1)
            else:
                as_of = trading_days[int(share * (days - 1))]
            title = f"Valuation report {as_of:%d %b %Y}"
            document = AssetDocument.objects.filter(asset=asset, title=title).first()
            if document is None:
                content = pdf_document(
                    f"Valuation: {asset.name}",
                    [
                        f"Value per fraction: {value / 100:,.2f} {CURRENCY} as of {as_of:%d %B %Y}.",
                        f"{asset.total_fractions:,} fractions.",
                        "Method: auction comparables for the artist, 2018 onwards.",
                        "Demo document generated by seed_demo_integrity.",
                    ],
                )
                upload = SimpleUploadedFile(f"valuation-{as_of:%Y-%m-%d}.pdf", content)
                document = asset_services.document_add_after_listing(
                    asset=asset,
                    actor=admin,
                    kind=AssetDocument.Kind.APPRAISAL,
                    title=title,
                    upload=upload,
                    validated=validate_upload(upload),
                    public_to_investors=True,
                )
            valuation_publish(
                asset=asset, actor=admin, value_per_fraction_minor=value, as_of=as_of, document=document, note=note
            )
        return start

    def _history(self, asset: Asset, plan: list[PlannedTrade], users: dict) -> int:
        """Each planned trade: the seller's order rests, the buyer's crosses it at its
        price; the clock travels to the trade's moment only around each call."""
        placed = 0
        now = timezone.now()
        for trade in plan:
            if trade.at >= now:
                raise CommandError(f"A planned trade lies in the future ({trade.at:%Y-%m-%d %H:%M}).")
            sell_key, buy_key = trade.keys
            for offset, email, side, key in ((0, trade.seller, "sell", sell_key), (7, trade.buyer, "buy", buy_key)):
                with time_machine.travel(trade.at + datetime.timedelta(minutes=offset), tick=True):
                    order = trade_order_place(
                        investor=users[email],
                        asset=asset,
                        side=side,
                        quantity=trade.quantity,
                        limit_price_minor=trade.price_minor,
                        time_in_force=TradeOrder.TimeInForce.GTC,
                        idempotency_key=key,
                    )
                placed += not getattr(order, "replayed", False)
                if side == "buy" and order.status != TradeOrder.Status.FILLED:
                    raise CommandError(
                        f"The history's order {key} did not fill ({order.status}, {order.cancel_code or 'resting'})."
                    )
        return placed

    def _until(self, what: str, ready):
        # perf_counter: time-machine 2.x also moves time.monotonic while travelling.
        deadline = time.perf_counter() + self.deadline_s
        announced = False
        while not (value := ready()):
            if time.perf_counter() > deadline:
                raise CommandError(f"Gave up after {self.deadline_s:.0f} s waiting for {what}; is the worker running?")
            if not announced:
                self.stdout.write(f"Market-integrity demo: waiting for {what}...")
                announced = True
            time.sleep(1)
        return value
