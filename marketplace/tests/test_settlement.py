"""Settlement on a real devnet: orders placed (concurrently, at random) are settled by a
real Celery worker through the outbox, and the books reconcile with the chain."""

import pytest
from django.db.models import Sum

from chain.models import ChainTransaction
from chain.services import outbox_retry
from chain.worker import outbox_process
from compliance.models import AuditEntry
from compliance.services import investor_freeze, investor_unfreeze
from marketplace.models import LedgerAccount, Offering, PrimaryOrder, Withdrawal
from marketplace.reconciliation import reconcile
from marketplace.services import deposit_record, order_compensate, order_place, order_settlement_retry

from .chain_helpers import mint_live_asset, wait_until
from .factories import StaffFactory, verified_investor
from .test_concurrency import cash_invariants, random_operations, supply_invariants

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]
A = LedgerAccount.Kind


def test_random_trading_settles_on_chain_and_reconciles(chain_platform, celery_worker_process):
    # Given a live asset minted on devnet by the worker (100 fractions, 60 offered)
    asset = mint_live_asset(total_fractions=100, fractions_for_sale=60, max_purchase=None)
    offering = Offering.objects.get(asset=asset)
    staff = StaffFactory()
    investors = [verified_investor() for _ in range(5)]
    for i, investor in enumerate(investors):
        deposit_record(
            investor=investor, amount_minor=(i + 1) * 40_000, currency="EUR", bank_reference=f"INIT-{i}", actor=staff
        )

    # When investors deposit, buy and withdraw concurrently while the worker settles
    outcomes = random_operations(offering=offering, investors=investors, staff=staff, seed=7, steps_per_thread=8)
    assert outcomes["buy:ok"] > 0, outcomes
    cash_invariants()
    supply_invariants(offering)

    # Then every order settles on chain ...
    def all_settled():
        return not PrimaryOrder.objects.exclude(status__in=["settled", "failed"]).exists()

    wait_until(all_settled, 120, 0.5, "settlements")
    assert not PrimaryOrder.objects.filter(status="failed").exists(), list(
        PrimaryOrder.objects.filter(status="failed").values_list("failure_reason", flat=True)
    )
    # ... the cash went to the issuer and the fee account exactly ...
    settled = PrimaryOrder.objects.filter(status="settled").aggregate(g=Sum("gross_minor"), f=Sum("fee_minor"))
    assert LedgerAccount.objects.get(kind=A.ISSUER_PROCEEDS).balance == settled["g"]
    assert LedgerAccount.objects.get(kind=A.PLATFORM_FEES).balance == settled["f"]
    # (held cash is now only withdrawals waiting for staff)
    waiting = Withdrawal.objects.filter(status="requested").aggregate(s=Sum("amount_minor"))["s"] or 0
    assert LedgerAccount.objects.filter(kind=A.INVESTOR_HELD).aggregate(s=Sum("balance"))["s"] == waiting
    cash_invariants()
    supply_invariants(offering)
    # ... and reconciliation finds the database equal to the chain
    report = reconcile()
    assert report.ok and report.assets_checked == 1 and not report.skipped, (report.mismatches, report.skipped)


def test_a_rejected_settlement_is_visible_and_staff_refund_it(chain_platform):
    # Given an asset whose chain supply (5) is smaller than the books believe (a broken mint)
    asset = mint_live_asset(
        chain_total=5, process_here=True, total_fractions=100, fractions_for_sale=60, max_purchase=None
    )
    offering = Offering.objects.get(asset=asset)
    staff = StaffFactory()
    investor = verified_investor()
    deposit_record(investor=investor, amount_minor=1_000_000, currency="EUR", bank_reference="R", actor=staff)
    # When an order for 10 is settled, algod refuses it for good
    order = order_place(investor=investor, offering_id=offering.pk, quantity=10, idempotency_key="k")
    outbox_process(chain_tx_id=order.chain_tx_id)
    order.refresh_from_db()
    assert order.status == "failed" and "algod rejected" in order.failure_reason
    assert AuditEntry.objects.filter(action="order.settlement_failed").exists()
    # Then staff refund it: the cash comes back, the fractions return to the offering
    order_compensate(order=order, actor=staff, reason="Supply on chain is short; refunding")
    available = LedgerAccount.objects.get(user=investor, kind=A.INVESTOR_AVAILABLE)
    assert available.balance == 1_000_000
    offering.refresh_from_db()
    assert offering.fractions_sold == 0
    cash_invariants()


def _order_reserved_on_a_live_asset():
    """A verified investor's order for 4 fractions, accepted and waiting for settlement."""
    asset = mint_live_asset(process_here=True, total_fractions=100, fractions_for_sale=60, max_purchase=None)
    offering = Offering.objects.get(asset=asset)
    staff = StaffFactory()
    investor = verified_investor()
    deposit_record(investor=investor, amount_minor=1_000_000, currency="EUR", bank_reference="R", actor=staff)
    order = order_place(investor=investor, offering_id=offering.pk, quantity=4, idempotency_key="k")
    return order, offering, investor, staff


def test_compliance_is_checked_again_before_the_settlement_is_signed(chain_platform):
    # Given an order accepted while the investor was eligible
    order, offering, investor, staff = _order_reserved_on_a_live_asset()
    # When compliance freezes the investor before the worker gets to the settlement
    investor_freeze(user=investor, actor=staff, reason="Court order")
    outbox_process(chain_tx_id=order.chain_tx_id)
    # Then nothing is signed or sent, and the order fails with the engine's reason
    row = ChainTransaction.objects.get(pk=order.chain_tx_id)
    assert row.status == "failed" and row.signed_bytes is None and row.txid == ""
    order.refresh_from_db()
    assert order.status == "failed"
    assert "compliance check before settlement failed" in order.failure_reason
    assert "frozen" in order.failure_reason
    # When the freeze is lifted and staff retry, the same order settles on chain
    investor_unfreeze(user=investor, actor=staff, reason="Order lifted")
    order_settlement_retry(order=order, actor=staff)
    outbox_process(chain_tx_id=order.chain_tx_id)
    order.refresh_from_db()
    assert order.status == "settled", order.failure_reason
    cash_invariants()


def test_a_refunded_order_is_never_delivered_by_a_later_chain_retry(chain_platform):
    # Given a settlement refused by compliance and refunded by staff
    order, offering, investor, staff = _order_reserved_on_a_live_asset()
    investor_freeze(user=investor, actor=staff, reason="Review")
    outbox_process(chain_tx_id=order.chain_tx_id)
    order_compensate(order=order, actor=staff, reason="Investor frozen; refunding")
    investor_unfreeze(user=investor, actor=staff, reason="Cleared")
    # When someone retries the failed chain row from the chain admin
    outbox_retry(chain_tx=ChainTransaction.objects.get(pk=order.chain_tx_id), actor=staff)
    outbox_process(chain_tx_id=order.chain_tx_id)
    # Then the refunded fractions are not delivered: nothing signed, the row fails again
    row = ChainTransaction.objects.get(pk=order.chain_tx_id)
    assert row.status == "failed" and row.signed_bytes is None and "refunded" in row.last_error
    order.refresh_from_db()
    assert order.status == "refunded"
    offering.refresh_from_db()
    assert offering.fractions_sold == 0
    cash_invariants()
