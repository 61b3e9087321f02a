"""`manage.py seed_demo_integrity` (the market-integrity demo of `make run`) on the session
devnet with a real Celery worker: the demo users and assets are seeded as `make run` does,
the worker mints the assets and settles the purchases and the travelled price history on
chain; a second run adds nothing. The command runs in its own process, as `make run`
starts it, so its travelled clock never touches this test session's."""

import io
import subprocess
import sys
from datetime import UTC
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command
from django.db.models.functions import TruncDate
from django.utils import timezone

from compliance.audit import audit_chain_verify
from marketplace.auction import indicative_auction
from marketplace.management.commands.seed_demo_integrity import AUCTION_ASSET, CHART_ASSET
from marketplace.market_data import chart_series
from marketplace.market_proofs import market_verify
from marketplace.models import Market, Trade, TradeOrder, Valuation
from tests.plugins.celery_worker import ROOT, _worker_env

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]
DAYS = 22


def _quiet(name, *args):
    out = io.StringIO()
    call_command(name, *args, stdout=out)
    return out.getvalue()


def _seed_integrity(*args) -> str:
    """The command in a subprocess on this test's database, devnet and keys (as the worker)."""
    done = subprocess.run(
        [sys.executable, "manage.py", "seed_demo_integrity", *args],
        cwd=ROOT,
        env=_worker_env(),
        capture_output=True,
        text=True,
        timeout=500,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _counts():
    return {
        "orders": TradeOrder.objects.count(),
        "trades": Trade.objects.count(),
        "valuations": Valuation.objects.count(),
        "open": TradeOrder.objects.filter(status=TradeOrder.Status.OPEN).count(),
    }


@pytest.mark.timeout(600)
def test_seed_demo_integrity_seeds_an_auction_book_and_a_price_history(chain_platform, celery_worker_process):
    # Given the demo users and assets (minted on devnet by the worker)
    _quiet("seed_demo")
    _quiet("seed_demo_assets")

    # When the market-integrity demo is seeded
    output = _seed_integrity("--wait", "240", "--days", str(DAYS))
    assert "0 problem(s)" in output, output

    # Then the gold lot trades in daily call auctions, with bids and asks that cross
    gold = Market.objects.get(asset__name=AUCTION_ASSET)
    assert gold.trading_mode == Market.TradingMode.AUCTION
    assert gold.auction_times == ["15:00"] and gold.time_zone == "Europe/London"
    assert gold.next_auction_at is not None and gold.next_auction_at > timezone.now()
    assert gold.next_auction_at.astimezone(ZoneInfo("Europe/London")).hour == 15
    sides = set(TradeOrder.objects.filter(market=gold, status=TradeOrder.Status.OPEN).values_list("side", flat=True))
    assert sides == {"buy", "sell"}
    assert not Trade.objects.filter(market=gold).exists()  # the auction is beat's, at 15:00
    indicative = indicative_auction(gold)
    assert indicative.crossed and indicative.price_minor == 403_50 and indicative.volume == 15

    # ... and the painting has a price history on past days, every trade confirmed on chain
    blue = Market.objects.get(asset__name=CHART_ASSET)
    trades = Trade.objects.filter(market=blue)
    days = set(trades.annotate(day=TruncDate("created_at", tzinfo=UTC)).values_list("day", flat=True))
    assert len(days) == DAYS >= 20
    assert max(days) < timezone.now().astimezone(UTC).date()
    assert not trades.exclude(status=Trade.Status.CONFIRMED).exists()
    assert not trades.filter(chain_tx__confirmed_round__isnull=True).exists()
    assert all(t.band_low_minor <= t.price_minor <= t.band_high_minor for t in trades)
    assert not TradeOrder.objects.filter(market=blue, status=TradeOrder.Status.OPEN).exists()
    # ... drawn beside three published valuations, each backed by a document of the asset
    valuations = Valuation.objects.filter(asset=blue.asset, status=Valuation.Status.PUBLISHED)
    assert valuations.count() == 3
    assert all(v.document.asset_id == blue.asset_id for v in valuations)
    series = chart_series(asset=blue.asset, range_key="all")
    assert len(series.candles) == DAYS and len(series.valuations) == 3

    # ... and the market's and the audit log's proofs hold
    assert market_verify().ok
    assert audit_chain_verify().ok

    # When it runs again (a restart of `make run`), nothing changes
    before = _counts()
    output = _seed_integrity("--wait", "60", "--days", str(DAYS))
    assert "(0 orders placed now" in output, output
    assert _counts() == before
    assert market_verify().ok
