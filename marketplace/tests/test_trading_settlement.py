"""Settlement of trades through the outbox: the row each trade writes, the callbacks
(confirmed, failed), the guard before signing, staff retry and reversal with their
permissions, and end to end on devnet (units move on chain, reconcile stays clean)."""

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError

from accounts.tests.factories import UserFactory
from chain.models import ChainTransaction
from chain.services import SigningRefused, outbox_retry
from chain.worker import outbox_process
from compliance.models import AuditEntry
from compliance.services import investor_freeze, investor_unfreeze
from marketplace.models import Holding, Offering, PrimaryOrder, Trade
from marketplace.reconciliation import reconcile
from marketplace.services import deposit_record, order_place
from marketplace.trading import trade_reverse, trade_settlement_guard, trade_settlement_retry

from .chain_helpers import mint_live_asset
from .factories import OfferingFactory, StaffFactory, verified_investor
from .trading_helpers import books_sound, cash, confirm, fail, fees, give_units, place, units

FUNDS = 1_000_000


@pytest.fixture(autouse=True)
def rates(settings):
    settings.MARKETPLACE_MAKER_FEE_BPS = 10
    settings.MARKETPLACE_TAKER_FEE_BPS = 25
    settings.MARKETPLACE_TRADE_ORDER_RATE = (1000, 60)
    settings.MARKETPLACE_PRICE_CHECKS = []


def _one_trade(fund, quantity=4, price=10_000):
    asset = OfferingFactory().asset
    seller, buyer = verified_investor(), verified_investor()
    give_units(seller, asset, 10)
    fund(buyer, FUNDS)
    place(seller, asset, "sell", quantity, price)
    place(buyer, asset, "buy", quantity, price)
    return asset, seller, buyer, Trade.objects.select_related("chain_tx").get()


@pytest.mark.django_db
def test_each_trade_writes_one_clawback_from_seller_to_buyer(fund):
    asset, seller, buyer, trade = _one_trade(fund)
    tx = trade.chain_tx
    assert (tx.kind, tx.status) == ("asset_transfer", "pending")
    assert tx.payload == {
        "asset_id": asset.asa_id,
        "sender": seller.chain_accounts.get().address,
        "receiver": buyer.chain_accounts.get().address,
        "amount": 4,
    }
    assert (tx.on_confirmed, tx.on_failed, tx.before_sign) == (
        "marketplace.trading.trade_settlement_confirmed",
        "marketplace.trading.trade_settlement_failed",
        "marketplace.trading.trade_settlement_guard",
    )
    assert tx.idempotency_key == f"trade:{trade.public_id}"
    assert trade.settlement_status == "matched"
    ChainTransaction.objects.filter(pk=tx.pk).update(status="submitted")
    trade.refresh_from_db()
    assert trade.settlement_status == "submitted"


@pytest.mark.django_db
def test_confirmation_moves_the_settled_units_and_pays_the_seller_once(fund):
    asset, seller, buyer, trade = _one_trade(fund)
    net = trade.seller_net_minor
    confirm(trade, round_=77, txid="X" * 52)
    trade.refresh_from_db()
    assert (trade.status, trade.settlement_status, trade.chain_tx.confirmed_round) == ("confirmed", "confirmed", 77)
    assert units(seller, asset) == (6, 0, 0, 0, 6)
    assert units(buyer, asset) == (4, 0, 0, 0, 4)
    assert Holding.objects.get(investor=buyer, asset=asset).first_acquired_at is not None
    assert cash(seller) == (net, 0)
    confirm(trade)  # a second delivery of the callback changes nothing
    assert units(buyer, asset)[0] == 4 and cash(seller) == (net, 0)
    books_sound()


@pytest.mark.django_db
def test_a_failed_settlement_is_told_to_both_and_reversed_exactly(fund, django_capture_on_commit_callbacks):
    asset, seller, buyer, trade = _one_trade(fund)
    staff = StaffFactory()
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        fail(trade, "algod rejected: asset frozen")
    trade.refresh_from_db()
    assert (trade.status, trade.failure_reason) == ("failed", "algod rejected: asset frozen")
    assert sorted(m.to[0] for m in mail.outbox) == sorted([buyer.email, seller.email])
    assert AuditEntry.objects.filter(action="trade.settlement_failed").exists()
    # Nothing moved on failure: still reserved for the trade
    assert units(seller, asset) == (10, 0, 0, 4, 6) and units(buyer, asset) == (0, 4, 0, 0, 0)
    books_sound()
    # When staff reverse it, every cent and unit is back where it was before the trade
    with pytest.raises(ValidationError):
        trade_reverse(trade=trade, actor=staff, reason="")
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        trade_reverse(trade=trade, actor=staff, reason="Chain refused the delivery")
    trade.refresh_from_db()
    assert trade.status == "reversed"
    assert cash(buyer) == (FUNDS, 0) and cash(seller) == (0, 0) and fees() == 0
    assert units(seller, asset) == (10, 0, 0, 0, 10) and units(buyer, asset) == (0, 0, 0, 0, 0)
    assert AuditEntry.objects.get(action="trade.reversed").after["refund_minor"] == trade.buyer_cost_minor
    assert sorted(m.to[0] for m in mail.outbox) == sorted([buyer.email, seller.email])
    with pytest.raises(ValidationError):
        trade_reverse(trade=trade, actor=staff, reason="again")
    # ... and a retried chain row can never deliver it any more
    with pytest.raises(SigningRefused, match="reversed"):
        trade_settlement_guard(trade.chain_tx)
    books_sound()


@pytest.mark.django_db
def test_retry_and_reverse_need_their_permissions(fund):
    asset, seller, buyer, trade = _one_trade(fund)
    with pytest.raises(ValidationError):  # not failed
        trade_settlement_retry(trade=trade, actor=StaffFactory())
    fail(trade)
    for actor in (buyer, UserFactory(is_staff=True), None):
        with pytest.raises(PermissionDenied):
            trade_settlement_retry(trade=trade, actor=actor)
        with pytest.raises(PermissionDenied):
            trade_reverse(trade=trade, actor=actor, reason="x")
    staff = StaffFactory()
    trade_settlement_retry(trade=trade, actor=staff)
    trade.refresh_from_db()
    trade.chain_tx.refresh_from_db()
    assert (trade.status, trade.chain_tx.status, trade.chain_tx.generation) == ("matched", "pending", 1)
    assert AuditEntry.objects.filter(action="trade.settlement_retried").exists()
    confirm(trade)
    trade.refresh_from_db()
    assert trade.status == "confirmed"
    books_sound()


@pytest.mark.django_db
def test_the_guard_refuses_when_either_side_may_no_longer_trade(fund):
    asset, seller, buyer, trade = _one_trade(fund)
    staff = StaffFactory()
    trade_settlement_guard(trade.chain_tx)  # both fine
    investor_freeze(user=buyer, actor=staff, reason="Review")
    with pytest.raises(SigningRefused, match="buyer: .*frozen"):
        trade_settlement_guard(trade.chain_tx)
    investor_unfreeze(user=buyer, actor=staff)
    investor_freeze(user=seller, actor=staff, reason="Review")
    with pytest.raises(SigningRefused, match="seller: .*frozen"):
        trade_settlement_guard(trade.chain_tx)


# -- on devnet ---------------------------------------------------------------------------------


def _seller_with_units_on_chain(asset, staff, quantity):
    seller = verified_investor()
    deposit_record(investor=seller, amount_minor=FUNDS, currency="EUR", bank_reference=f"S-{seller.pk}", actor=staff)
    order = order_place(
        investor=seller, offering_id=Offering.objects.get(asset=asset).pk, quantity=quantity, idempotency_key="p"
    )
    outbox_process(chain_tx_id=order.chain_tx_id)
    order.refresh_from_db()
    assert order.status == "settled", order.failure_reason
    return seller


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_a_trade_settles_on_devnet_and_reconciles(chain_platform):
    # Given a seller holding 10 units on chain and a buyer who never held the asset
    asset = mint_live_asset(process_here=True, total_fractions=100, fractions_for_sale=60, max_purchase=None)
    staff = StaffFactory()
    seller = _seller_with_units_on_chain(asset, staff, 10)
    buyer = verified_investor()
    deposit_record(investor=buyer, amount_minor=FUNDS, currency="EUR", bank_reference="B", actor=staff)
    # When they trade 3 units and the worker settles the outbox row
    place(seller, asset, "sell", 3, 10_500)
    place(buyer, asset, "buy", 3, 10_500)
    trade = Trade.objects.get()
    assert not reconcile().assets_checked  # in flight: skipped, not a mismatch
    outbox_process(chain_tx_id=trade.chain_tx_id)
    # Then it is confirmed in a round, with the txid of a group that funded and opted the buyer in
    trade.refresh_from_db()
    assert trade.status == "confirmed", trade.failure_reason
    assert trade.chain_tx.confirmed_round and len(trade.chain_tx.group_txids) == 3
    assert units(seller, asset) == (7, 0, 0, 0, 7) and units(buyer, asset) == (3, 0, 0, 0, 3)
    report = reconcile()
    assert report.ok and report.assets_checked == 1, (report.mismatches, report.skipped)
    books_sound()


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_a_refused_delivery_is_reversed_exactly_and_reconcile_stays_clean(chain_platform):
    asset = mint_live_asset(process_here=True, total_fractions=100, fractions_for_sale=60, max_purchase=None)
    staff = StaffFactory()
    seller = _seller_with_units_on_chain(asset, staff, 10)
    buyer = verified_investor()
    deposit_record(investor=buyer, amount_minor=FUNDS, currency="EUR", bank_reference="B", actor=staff)
    place(seller, asset, "sell", 3, 10_500)
    place(buyer, asset, "buy", 3, 10_500)
    trade = Trade.objects.get()
    seller_cash = cash(seller)
    # When compliance freezes the buyer before the worker signs
    investor_freeze(user=buyer, actor=staff, reason="Court order")
    outbox_process(chain_tx_id=trade.chain_tx_id)
    trade.refresh_from_db()
    assert trade.status == "failed" and "compliance check before settlement failed" in trade.failure_reason
    assert ChainTransaction.objects.get(pk=trade.chain_tx_id).signed_bytes is None
    # Then staff reverse it: the buyer has all their cash back, the seller their units
    trade_reverse(trade=trade, actor=staff, reason="Buyer frozen")
    primary_fees = sum(o.fee_minor for o in PrimaryOrder.objects.filter(status="settled"))
    assert cash(buyer) == (FUNDS, 0) and fees() == primary_fees
    assert cash(seller) == (seller_cash[0], 0)
    assert units(seller, asset) == (10, 0, 0, 0, 10) and units(buyer, asset) == (0, 0, 0, 0, 0)
    # A retry from the chain admin cannot deliver the reversed trade
    investor_unfreeze(user=buyer, actor=staff)
    outbox_retry(chain_tx=ChainTransaction.objects.get(pk=trade.chain_tx_id), actor=staff)
    outbox_process(chain_tx_id=trade.chain_tx_id)
    row = ChainTransaction.objects.get(pk=trade.chain_tx_id)
    assert row.status == "failed" and "reversed" in row.last_error
    report = reconcile()
    assert report.ok and report.assets_checked == 1, (report.mismatches, report.skipped)
    books_sound()
