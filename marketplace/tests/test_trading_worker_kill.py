"""kill -9 of a real Celery worker while trades settle on a real devnet.

Every trade must settle exactly once: one confirmed clawback on chain per trade (read
from the devnet's own journal of accepted groups, so a double send would show even if
the database missed it), no txid twice; the database's settled units equal the chain's
for every account, sellers included (reconcile); market_check and ledger_check clean."""

import random
from collections import Counter
from pathlib import Path

import msgpack
import pytest
from django.conf import settings
from django.db.models import Sum

from chain import gateway
from chain.models import ChainTransaction
from chain.worker import outbox_process, outbox_sweep
from devnet import codec
from devnet.store import HEADER, JOURNAL_FILE, MAGIC
from marketplace.models import Holding, LedgerAccount, Offering, Trade
from marketplace.reconciliation import reconcile
from marketplace.services import deposit_record, order_place

from .chain_helpers import mint_live_asset, wait_until
from .factories import StaffFactory, verified_investor
from .trading_helpers import books_sound, place

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]
A = LedgerAccount.Kind


@pytest.fixture(autouse=True)
def rates(settings):
    settings.MARKETPLACE_MAKER_FEE_BPS = 10
    settings.MARKETPLACE_TAKER_FEE_BPS = 25
    settings.MARKETPLACE_TRADE_ORDER_RATE = (1000, 60)
    settings.MARKETPLACE_PRICE_CHECKS = []


@pytest.fixture
def workers(transactional_db, tmp_path):
    """Factory: start a real worker (extra environment allowed); all stopped at teardown."""
    from chain.worker import queue_purge
    from tests.plugins.celery_worker import WorkerProcess, _worker_env

    started = []

    def start(name="worker", **env):
        worker_env = _worker_env()
        worker_env.update({k: str(v) for k, v in env.items()})
        worker = WorkerProcess(tmp_path / f"{name}-{len(started)}.log", worker_env)
        started.append(worker)
        return worker.start()

    yield start
    for worker in started:
        worker.stop()
    queue_purge()


def chain_clawbacks(asa_id: int) -> list[tuple[str, str, str, int]]:
    """Every clawback of the ASA the devnet accepted, from its journal: (txid, from, to,
    amount). Read-only (the running devnet owns the file; a record still being written
    at the tail is ignored)."""
    data = (Path(settings.DEVNET_DATA_DIR) / JOURNAL_FILE).read_bytes()
    out, pos = [], 0
    while pos + HEADER.size <= len(data):
        magic, length, _ = HEADER.unpack(data[pos : pos + HEADER.size])
        payload = data[pos + HEADER.size : pos + HEADER.size + length]
        if magic != MAGIC or len(payload) != length:
            break
        kind, _, body = msgpack.unpackb(payload, raw=False)
        pos += HEADER.size + length
        if kind != "g":
            continue
        for stxn in codec.decode_signed_txns(body):
            txn = stxn["txn"]
            if txn.get("type") == "axfer" and txn.get("xaid") == asa_id and txn.get("asnd"):
                out.append(
                    (
                        codec.txid_str(codec.raw_txid(txn)),
                        codec.encode_address(txn["asnd"]),
                        codec.encode_address(txn["arcv"]),
                        txn.get("aamt", 0),
                    )
                )
    return out


def market_with_sellers(*, sellers=3, units=20):
    """A live asset on devnet whose sellers bought their units in the primary market
    (settled here, before any worker runs)."""
    asset = mint_live_asset(process_here=True, total_fractions=200, fractions_for_sale=120, max_purchase=None)
    staff = StaffFactory()
    offering = Offering.objects.get(asset=asset)
    people = []
    for i in range(sellers):
        seller = verified_investor()
        deposit_record(investor=seller, amount_minor=10_000_000, currency="EUR", bank_reference=f"S{i}", actor=staff)
        order = order_place(investor=seller, offering_id=offering.pk, quantity=units, idempotency_key=f"p{i}")
        outbox_process(chain_tx_id=order.chain_tx_id)
        order.refresh_from_db()
        assert order.status == "settled", order.failure_reason
        people.append(seller)
    return asset, staff, people


def buyers(n, staff):
    out = []
    for i in range(n):
        buyer = verified_investor()
        deposit_record(investor=buyer, amount_minor=10_000_000, currency="EUR", bank_reference=f"B{i}", actor=staff)
        out.append(buyer)
    return out


def settled_count():
    return Trade.objects.filter(status="confirmed").count()


def assert_settled_exactly_once(asset, investors):
    trades = list(Trade.objects.select_related("chain_tx").filter(asset=asset))
    assert trades
    rows = [t.chain_tx for t in trades]
    assert all(t.status == "confirmed" for t in trades), Counter(t.status for t in trades)
    assert all(r.status == "confirmed" and r.confirmed_round and r.generation == 0 for r in rows)
    assert len({r.txid for r in rows}) == len(rows)  # no txid twice
    # The chain's own record: one clawback per trade, the trade's txid, nothing more
    addresses = {a.user_id: a.address for u in investors for a in u.chain_accounts.all()}
    primary = {r.txid for r in ChainTransaction.objects.filter(primary_order__isnull=False)}
    on_chain = [c for c in chain_clawbacks(asset.asa_id) if c[0] not in primary]
    assert len(primary) == Offering.objects.get(asset=asset).orders.count()
    by_txid = Counter(c[0] for c in on_chain)
    assert all(n == 1 for n in by_txid.values()), by_txid
    assert sorted(on_chain) == sorted(
        (t.chain_tx.txid, addresses[t.seller_id], addresses[t.buyer_id], t.quantity) for t in trades
    )
    # Books equal the chain for everyone, sellers included
    for user in investors:
        holding = Holding.objects.get(investor=user, asset=asset)
        assert (holding.pending_quantity, holding.locked_quantity, holding.pending_out_quantity) == (0, 0, 0)
        assert (gateway.asset_amount(addresses[user.pk], asset.asa_id) or 0) == holding.quantity, user.pk
    report = reconcile()
    assert report.ok and report.assets_checked == 1 and not report.skipped, (report.mismatches, report.skipped)
    # Every seller was paid exactly once: proceeds available, nothing held for trades
    for seller_id in {t.seller_id for t in trades}:
        held = LedgerAccount.objects.get(user_id=seller_id, kind=A.INVESTOR_HELD, currency="EUR").balance
        assert held == 0, seller_id
    fees = LedgerAccount.objects.get(kind=A.PLATFORM_FEES, currency="EUR").balance
    primary_fees = Offering.objects.get(asset=asset).orders.aggregate(f=Sum("fee_minor"))["f"] or 0
    assert fees == primary_fees + sum(t.buyer_fee_minor + t.seller_fee_minor for t in trades)
    books_sound()


def settle_all(start, timeout=90):
    """A healthy worker finishes the job; the sweeper re-sends what the dead one held."""
    start("final")
    wait_until(
        lambda: (outbox_sweep() or True) and not Trade.objects.exclude(status="confirmed").exists(),
        timeout,
        interval=0.5,
        message="every trade confirmed",
    )


def test_worker_killed_between_submit_and_record_settles_each_trade_once(chain_platform, workers):
    # Given sellers holding units on chain and buyers who never held the asset
    asset, staff, sellers = market_with_sellers()
    people = buyers(3, staff)
    from chain.worker import queue_purge

    queue_purge()  # the primary orders' messages (settled already)
    # and a worker that sleeps right after submitting a group, before recording it
    paused = workers("paused", CHAIN_PAUSE_AFTER_SUBMIT_SECONDS=120)
    for i, buyer in enumerate(people):
        seller = sellers[i % len(sellers)]
        place(seller, asset, "sell", 3 + i, 10_000 + i)
        place(buyer, asset, "buy", 3 + i, 10_000 + i)
    assert Trade.objects.count() == 3

    # When the first delivery is on chain but the worker has not recorded it: kill -9
    wait_until(
        lambda: ChainTransaction.objects.filter(trade__isnull=False, status="submitted").exists(),
        30,
        message="a trade's group submitted",
    )
    row = ChainTransaction.objects.get(trade__isnull=False, status="submitted")
    wait_until(lambda: any(c[0] == row.txid for c in chain_clawbacks(asset.asa_id)), 30, message="group on chain")
    paused.kill()
    assert f"submitted txid={row.txid}" in paused.log()

    # Then a new worker settles every trade exactly once
    settle_all(workers)
    assert_settled_exactly_once(asset, sellers + people)


def test_worker_killed_again_and_again_while_trades_stream_settles_each_trade_once(chain_platform, workers):
    asset, staff, sellers = market_with_sellers(sellers=3, units=20)
    people = buyers(4, staff)
    from chain.worker import queue_purge

    queue_purge()
    rnd = random.Random(13)
    worker = workers("first")
    kills = 0
    for n in range(12):
        seller, buyer = sellers[n % 3], people[n % 4]
        quantity, price = rnd.randint(1, 3), 10_000 + rnd.randint(-5, 5)
        place(seller, asset, "sell", quantity, price)
        place(buyer, asset, "buy", quantity, price + rnd.randint(0, 3))
        if n % 3 == 2:  # every third trade: kill -9 as soon as a delivery completes, mid-stream
            before = settled_count()
            wait_until(lambda before=before: settled_count() > before, 60, message="progress before the kill")
            worker.kill()
            kills += 1
            worker = workers(f"restarted-{kills}")
    assert kills == 4 and Trade.objects.count() >= 12
    settle_all(workers)
    assert_settled_exactly_once(asset, sellers + people)
