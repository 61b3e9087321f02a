"""order_place and the settlement callbacks, in one database transaction each (the
chain rows are written but not sent; test_settlement.py sends them to devnet)."""

import datetime

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from accounts.tests.factories import UserFactory
from assets.models import Asset
from chain.models import ChainTransaction
from compliance.models import AuditEntry
from marketplace.ledger_proofs import ledger_verify
from marketplace.models import Holding, JournalEntry, LedgerAccount, Offering, PrimaryOrder
from marketplace.services import (
    order_compensate,
    order_place,
    order_settlement_confirmed,
    order_settlement_failed,
    order_settlement_retry,
)

from .factories import OfferingFactory, verified_investor

pytestmark = pytest.mark.django_db
A = LedgerAccount.Kind


def balances(user, currency="EUR"):
    return {a.kind: a.balance for a in LedgerAccount.objects.filter(user=user, currency=currency)}


def place(investor, offering, quantity, key="key-1"):
    return order_place(investor=investor, offering_id=offering.pk, quantity=quantity, idempotency_key=key)


def confirm(order, round_=42, txid="T" * 52):
    tx = order.chain_tx
    ChainTransaction.objects.filter(pk=tx.pk).update(status="confirmed", confirmed_round=round_, txid=txid)
    tx.refresh_from_db()
    order_settlement_confirmed(tx)


def fail(order, error="algod rejected: asset frozen"):
    tx = order.chain_tx
    ChainTransaction.objects.filter(pk=tx.pk).update(status="failed", last_error=error)
    tx.refresh_from_db()
    order_settlement_failed(tx)


def test_order_holds_cash_reserves_fractions_and_writes_the_settlement_row(offering, investor, fund, platform_accounts):
    # Given an investor with 1,000.00 EUR and an offering at 100.00 EUR + 1.5 % fee
    fund(investor, 100_000)
    # When they buy 5 fractions
    order = place(investor, offering, 5)
    # Then the order totals 500.00 + 7.50 fee, held from their available cash
    assert (order.status, order.gross_minor, order.fee_minor, order.total_minor) == ("reserved", 50_000, 750, 50_750)
    assert balances(investor) == {A.INVESTOR_AVAILABLE: 49_250, A.INVESTOR_HELD: 50_750}
    offering.refresh_from_db()
    assert offering.fractions_sold == 5 and offering.remaining == 995
    holding = Holding.objects.get(investor=investor, asset=offering.asset)
    assert (holding.quantity, holding.pending_quantity) == (0, 5)
    # ... and the outbox row is the treasury → investor clawback transfer
    tx = order.chain_tx
    assert tx.status == "pending" and tx.kind == "asset_transfer"
    assert tx.payload == {
        "asset_id": offering.asset.asa_id,
        "sender": platform_accounts["treasury"].address,
        "receiver": investor.chain_accounts.get().address,
        "amount": 5,
    }
    assert tx.on_confirmed == "marketplace.services.order_settlement_confirmed"
    assert ledger_verify().ok


def test_an_order_is_eleven_statements_once_accounts_and_holding_exist(offering, investor, fund, platform_accounts):
    """The purchase's SQL (docs/marketplace.md, bench/purchase/purchase.sql) stays this
    size: the offering, holding and cash locks, the idempotency read, the engine's read of
    the investor's standing (KYC and freeze in one statement; no holder count for an asset
    without a cap on holders), the chain accounts, the outbox row, the order, the journal
    entry with its postings and balances (one statement: marketplace/ledger.py), the
    holding's update and the offering's (the webhook subscription read is served from the
    cache after the first: webhooks/events.py). A new query here is a cost every buyer pays."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    fund(investor, 100_000)
    place(investor, offering, 1, key="warm-up")  # opens the holding and the held-cash account
    with CaptureQueriesContext(connection) as captured:
        place(investor, offering, 2, key="measured")
    sent = [q["sql"] for q in captured.captured_queries]
    statements = [sql for sql in sent if not sql.startswith(("SAVEPOINT", "RELEASE"))]
    assert len(statements) == 11, "\n".join(statements)
    outbox_insert = next(i for i, sql in enumerate(sent) if sql.startswith('INSERT INTO "chain_chaintransaction"'))
    assert "ON CONFLICT" in sent[outbox_insert] and not sent[outbox_insert - 1].startswith("SAVEPOINT")


def test_repeated_submission_is_idempotent(offering, investor, fund):
    fund(investor, 100_000)
    first = place(investor, offering, 3, key="same")
    again = place(investor, offering, 3, key="same")
    assert again.pk == first.pk and again.replayed
    assert PrimaryOrder.objects.count() == 1 and ChainTransaction.objects.count() == 1
    assert JournalEntry.objects.filter(kind="purchase_reserve").count() == 1
    offering.refresh_from_db()
    assert offering.fractions_sold == 3
    with pytest.raises(ValidationError, match="already used"):
        place(investor, offering, 4, key="same")


@pytest.mark.parametrize(
    "quantity, code",
    [
        (0, "not_positive"),
        (-3, "not_positive"),
        (2.5, "not_integer"),
        ("5", "not_integer"),
        (True, "not_integer"),
        (101, "above_max_purchase"),
        (1001, "insufficient_supply"),
        (11, "insufficient_cash"),
    ],
)
def test_bad_input_gets_a_clear_message_and_nothing_is_posted(offering, investor, fund, quantity, code):
    fund(investor, 100_000)  # 1,000.00: 9 fractions with the fee, not 11
    entries = JournalEntry.objects.count()
    with pytest.raises(ValidationError) as exc_info:
        place(investor, offering, quantity)
    assert code in [e.code for e in exc_info.value.error_list]
    assert exc_info.value.messages[0]
    assert JournalEntry.objects.count() == entries
    assert not PrimaryOrder.objects.exists() and not ChainTransaction.objects.exists()
    offering.refresh_from_db()
    assert offering.fractions_sold == 0
    assert balances(investor)[A.INVESTOR_AVAILABLE] == 100_000


def test_eligibility_failures_carry_the_engines_reasons(offering, fund):
    unverified = UserFactory()
    fund(unverified, 100_000)
    with pytest.raises(ValidationError) as exc_info:
        place(unverified, offering, 1)
    assert [e.code for e in exc_info.value.error_list] == ["kyc_not_approved"]
    assert "Verify your identity" in exc_info.value.messages[0]


def test_pending_units_count_toward_max_holding_and_holder_count(investor, fund, platform_accounts):
    offering = OfferingFactory(asset__max_holding=10, asset__max_holders=1)
    fund(investor, 1_000_000)
    place(investor, offering, 8, key="a")
    with pytest.raises(ValidationError) as exc_info:
        place(investor, offering, 3, key="b")
    assert "above_max_holding" in [e.code for e in exc_info.value.error_list]
    other = verified_investor()
    fund(other, 1_000_000)
    with pytest.raises(ValidationError) as exc_info:
        place(other, offering, 1, key="c")
    assert "max_holders_reached" in [e.code for e in exc_info.value.error_list]


@pytest.mark.parametrize(
    "change, code",
    [
        ({"status": Offering.Status.CLOSED}, "offering_closed"),
        ({"opens_at": timezone.now() + datetime.timedelta(days=2)}, "offering_not_open"),
        ({"closes_at": timezone.now() - datetime.timedelta(minutes=1)}, "offering_closed"),
        ({"fractions_sold": 1000}, "sold_out"),
    ],
)
def test_closed_upcoming_and_sold_out_offerings_refuse_orders(offering, investor, fund, change, code):
    fund(investor, 100_000)
    Offering.objects.filter(pk=offering.pk).update(**change)
    with pytest.raises(ValidationError) as exc_info:
        place(investor, offering, 1)
    assert exc_info.value.error_list[0].code == code


def test_selling_out_marks_the_offering_sold_out(investor, fund, platform_accounts):
    offering = OfferingFactory(fractions_for_sale=4, max_purchase=None)
    fund(investor, 1_000_000)
    place(investor, offering, 4)
    offering.refresh_from_db()
    assert offering.status == Offering.Status.SOLD_OUT and offering.current_status() == "sold_out"


def test_confirmed_settlement_pays_issuer_and_fee_and_settles_the_holding(offering, investor, fund):
    fund(investor, 100_000)
    order = place(investor, offering, 5)
    confirm(order, round_=77)
    order.refresh_from_db()
    assert order.status == "settled" and order.settled_at
    assert balances(investor) == {A.INVESTOR_AVAILABLE: 49_250, A.INVESTOR_HELD: 0}
    assert LedgerAccount.objects.get(kind=A.ISSUER_PROCEEDS, user=offering.asset.issuer).balance == 50_000
    assert LedgerAccount.objects.get(kind=A.PLATFORM_FEES, currency="EUR").balance == 750
    holding = Holding.objects.get(investor=investor, asset=offering.asset)
    assert (holding.quantity, holding.pending_quantity) == (5, 0) and holding.first_acquired_at
    # A second delivery of the same callback changes nothing
    order_settlement_confirmed(order.chain_tx)
    holding.refresh_from_db()
    assert holding.quantity == 5
    assert JournalEntry.objects.filter(kind="purchase_settle").count() == 1
    assert ledger_verify().ok


def test_failed_settlement_is_visible_then_retried_by_staff(offering, investor, fund, staff):
    fund(investor, 100_000)
    order = place(investor, offering, 5)
    fail(order)
    order.refresh_from_db()
    assert order.status == "failed" and "asset frozen" in order.failure_reason
    assert balances(investor)[A.INVESTOR_HELD] == 50_750  # still held, not lost
    order_settlement_retry(order=order, actor=staff)
    order.refresh_from_db()
    assert order.status == "reserved" and order.chain_tx.status == "pending" and order.chain_tx.generation == 1
    assert AuditEntry.objects.filter(action="order.settlement_retried").exists()
    confirm(order)
    order.refresh_from_db()
    assert order.status == "settled"


def test_failed_settlement_compensated_refunds_and_releases_the_fractions(investor, fund, staff, platform_accounts):
    offering = OfferingFactory(fractions_for_sale=5, max_purchase=None)
    fund(investor, 100_000)
    order = place(investor, offering, 5)
    fail(order)
    with pytest.raises(ValidationError):
        order_compensate(order=order, actor=staff, reason="")
    order_compensate(order=order, actor=staff, reason="Investor account cannot opt in")
    order.refresh_from_db()
    offering.refresh_from_db()
    assert order.status == "refunded"
    assert balances(investor) == {A.INVESTOR_AVAILABLE: 100_000, A.INVESTOR_HELD: 0}
    assert offering.fractions_sold == 0 and offering.status == Offering.Status.OPEN
    assert Holding.objects.get(investor=investor, asset=offering.asset).pending_quantity == 0
    entry = AuditEntry.objects.get(action="order.compensated")
    assert entry.reason == "Investor account cannot opt in" and entry.actor_id == staff.pk
    assert ledger_verify().ok


def test_only_failed_settlements_can_be_compensated_or_retried(offering, investor, fund, staff):
    fund(investor, 100_000)
    order = place(investor, offering, 1)
    with pytest.raises(ValidationError):
        order_compensate(order=order, actor=staff, reason="why not")
    with pytest.raises(ValidationError):
        order_settlement_retry(order=order, actor=staff)


def test_mint_confirmation_opens_the_offering_from_the_assets_terms(platform_accounts):
    from assets.services import asset_mint_confirmed
    from assets.tests.factories import AssetFactory

    asset = AssetFactory(status=Asset.Status.MINTING, fractions_for_sale=600, min_purchase=2, max_purchase=50)
    tx = ChainTransaction.objects.create(
        kind="asset_create",
        payload={},
        idempotency_key=f"asset-mint:{asset.public_id}",
        status="confirmed",
        asset_id=4242,
        txid="X" * 52,
        confirmed_round=9,
    )
    asset_mint_confirmed(tx)
    offering = Offering.objects.get(asset=asset)
    assert (offering.fractions_for_sale, offering.min_purchase, offering.max_purchase) == (600, 2, 50)
    assert (offering.price_per_fraction_minor, offering.currency) == (asset.price_per_fraction_minor, "EUR")
    assert offering.current_status() == "open"


def test_staff_cannot_retry_or_refund_their_own_failed_order(offering, investor, fund, staff):
    from django.core.exceptions import PermissionDenied

    from accounts.roles import ADMIN
    from accounts.services import user_add_role

    # Given a staff member who also invests, with a failed order of their own
    user_add_role(user=investor, role=ADMIN)
    investor.is_staff = True
    investor.save(update_fields=["is_staff"])
    fund(investor, 100_000)
    order = place(investor, offering, 1)
    fail(order)

    # Then they can neither send it again nor refund it themselves
    for act in (
        lambda: order_settlement_retry(order=order, actor=investor),
        lambda: order_compensate(order=order, actor=investor, reason="mine"),
    ):
        with pytest.raises(PermissionDenied, match="own"):
            act()
    order.refresh_from_db()
    assert order.status == "failed"
    # ... and another member of staff can
    order_settlement_retry(order=order, actor=staff)


def test_staff_cannot_change_the_offering_of_an_asset_they_issued(offering, staff):
    from django.core.exceptions import PermissionDenied

    from marketplace.services import offering_update

    asset = offering.asset
    asset.issuer = staff
    asset.save(update_fields=["issuer"])

    with pytest.raises(PermissionDenied, match="own"):
        offering_update(offering=offering, actor=staff, fields={"min_purchase": 2}, reason="mine")
    offering.refresh_from_db()
    assert offering.min_purchase == 1


def test_staff_repricing_mid_purchase_refuses_it_and_posts_nothing(offering, investor, fund, monkeypatch):
    """order_place reads the offering without a lock and takes the fractions last, with
    an UPDATE that matches only the terms it priced: a change in between refuses."""
    from marketplace import services

    fund(investor, 100_000)
    check = services.eligibility_check

    def staff_reprice_meanwhile(**kwargs):
        Offering.objects.filter(pk=offering.pk).update(price_per_fraction_minor=20_000)
        return check(**kwargs)

    monkeypatch.setattr(services, "eligibility_check", staff_reprice_meanwhile)
    entries = JournalEntry.objects.count()
    with pytest.raises(ValidationError) as exc:
        place(investor, offering, 2)
    assert exc.value.error_list[0].code == "offering_changed"
    assert JournalEntry.objects.count() == entries and PrimaryOrder.objects.count() == 0
    offering.refresh_from_db()
    assert offering.fractions_sold == 0


def test_supply_sold_by_others_mid_purchase_gets_the_supply_message(offering, investor, fund, monkeypatch):
    from marketplace import services

    fund(investor, 100_000)
    check = services.eligibility_check

    def others_buy_meanwhile(**kwargs):
        Offering.objects.filter(pk=offering.pk).update(fractions_sold=999)
        return check(**kwargs)

    monkeypatch.setattr(services, "eligibility_check", others_buy_meanwhile)
    with pytest.raises(ValidationError) as exc:
        place(investor, offering, 2)
    assert exc.value.error_list[0].code == "insufficient_supply"
    assert PrimaryOrder.objects.count() == 0


def test_the_last_fractions_mark_the_offering_sold_out(offering, investor, fund):
    fund(investor, 10_000_000)
    Offering.objects.filter(pk=offering.pk).update(fractions_sold=997)
    place(investor, offering, 3)
    offering.refresh_from_db()
    assert (offering.fractions_sold, offering.status) == (1000, Offering.Status.SOLD_OUT)
