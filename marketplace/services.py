"""Writes of the primary market: offerings, cash (deposits, withdrawals), purchases and
their settlement. Each public service owns one durable transaction and takes its row
locks in the order written in locks.py. Cash moves only through ledger.ledger_post.

Settlement runs through the chain outbox: `order_place` writes the ChainTransaction row
in its own transaction; the worker calls `order_settlement_confirmed` / `_failed` in the
transaction that marks that row confirmed or failed."""

from __future__ import annotations

import logging
import uuid

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils import timezone

from accounts.notifications import notify
from assets.catalogue_cache import catalogue_changed
from chain.models import ChainTransaction
from chain.selectors import ChainNotBootstrapped, treasury_and_investor_account
from chain.services import SigningRefused, investor_account_get_or_create, outbox_request, outbox_retry
from compliance.audit import audit_record, model_snapshot
from compliance.eligibility import RECEIVE, settlement_check
from config import rows
from config.money import MAX_MINOR, currency_clean, format_money
from webhooks.models import EventKind

from . import webhook_events
from .ledger import Leg, fee_for, ledger_post
from .locks import (
    chain_transaction_lock,
    holding_lock,
    ledger_accounts_lock,
    offering_lock,
    offering_read,
    order_lock,
    withdrawal_lock,
)
from .models import Deposit, Holding, JournalEntry, LedgerAccount, Offering, PrimaryOrder, Withdrawal
from .selectors import eligibility_check, offering_refusal, offering_sold_changed, purchase_limit_failures

logger = logging.getLogger("marketplace")

A = LedgerAccount.Kind
OS = PrimaryOrder.Status


def _positive_int(value, *, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(f"The {what} must be a whole number.", code="not_integer")
    if value <= 0:
        raise ValidationError(f"The {what} must be at least 1.", code="not_positive")
    if value > MAX_MINOR:
        raise ValidationError(f"The {what} is too large.", code="too_large")
    return value


def _require_staff(actor, perm: str, *, not_user=None) -> None:
    if not (actor is not None and actor.is_active and actor.is_staff and actor.has_perm(perm)):
        raise PermissionDenied("Only staff with the right permission can do this.")
    if not_user is not None and actor.pk == not_user.pk:
        raise PermissionDenied("Four eyes: staff cannot act on their own account, order or asset.")


# -- offerings -------------------------------------------------------------------------


def offering_open_for_asset(*, asset) -> Offering:
    """Open the primary offering of an asset that just went live, from the terms the
    issuer proposed. Runs inside the mint-confirmed callback's transaction; idempotent."""
    offering, created = Offering.objects.get_or_create(
        asset=asset,
        defaults=dict(
            price_per_fraction_minor=asset.price_per_fraction_minor,
            currency=asset.currency.upper(),
            fractions_for_sale=asset.fractions_for_sale,
            min_purchase=asset.min_purchase or 1,
            max_purchase=asset.max_purchase,
            fee_bps=settings.MARKETPLACE_DEFAULT_FEE_BPS,
            opens_at=asset.offering_opens_at,
            closes_at=asset.offering_closes_at,
            status=Offering.Status.OPEN,
        ),
    )
    if created:
        audit_record(
            actor=None, action="offering.opened", target=offering, after=model_snapshot(offering, OFFERING_FIELDS)
        )
    return offering


OFFERING_FIELDS = (
    "price_per_fraction_minor",
    "currency",
    "fractions_for_sale",
    "fractions_sold",
    "min_purchase",
    "max_purchase",
    "fee_bps",
    "opens_at",
    "closes_at",
    "status",
)
OFFERING_EDITABLE = (
    "price_per_fraction_minor",
    "fractions_for_sale",
    "min_purchase",
    "max_purchase",
    "fee_bps",
    "opens_at",
    "closes_at",
    "status",
)


@transaction.atomic(durable=True)
def offering_update(*, offering: Offering, actor, fields: dict, reason: str = "") -> Offering:
    """Staff change an offering's terms. The offering is the one place its window is
    kept: the asset's `offering_opens_at`/`offering_closes_at` are only what the issuer
    proposed, read once when the offering opened."""
    _require_staff(actor, "marketplace.change_offering", not_user=offering.asset.issuer)
    offering = offering_lock(pk=offering.pk)
    before = model_snapshot(offering, OFFERING_FIELDS)
    unknown = set(fields) - set(OFFERING_EDITABLE)
    if unknown:
        raise ValidationError(f"These fields cannot be changed here: {', '.join(sorted(unknown))}.")
    for name, value in fields.items():
        setattr(offering, name, value)
    errors = {}
    if offering.fractions_for_sale < offering.fractions_sold:
        errors["fractions_for_sale"] = f"{offering.fractions_sold:,} fractions are already sold or reserved."
    if offering.fractions_for_sale > offering.asset.total_fractions:
        errors["fractions_for_sale"] = f"The asset has only {offering.asset.total_fractions:,} fractions."
    if offering.max_purchase is not None and offering.max_purchase < offering.min_purchase:
        errors["max_purchase"] = "The maximum per purchase must be at least the minimum."
    if offering.opens_at and offering.closes_at and offering.closes_at <= offering.opens_at:
        errors["closes_at"] = "The offering must close after it opens."
    if offering.status == Offering.Status.SOLD_OUT and offering.remaining > 0:
        errors["status"] = "An offering with fractions left is not sold out; close it instead."
    if errors:
        raise ValidationError(errors)
    if offering.status == Offering.Status.OPEN and offering.remaining == 0:
        offering.status = Offering.Status.SOLD_OUT
    offering.full_clean()
    offering.save()
    audit_record(
        actor=actor,
        action="offering.updated",
        target=offering,
        before=before,
        after=model_snapshot(offering, OFFERING_FIELDS),
        reason=reason,
    )
    return offering


# -- cash: deposits and withdrawals -----------------------------------------------------


@transaction.atomic(durable=True)
def deposit_record(*, investor, amount_minor: int, currency: str, bank_reference: str, actor) -> Deposit:
    """Staff: cash arrived in the platform's bank account for `investor`."""
    return deposit_book(
        investor=investor, amount_minor=amount_minor, currency=currency, bank_reference=bank_reference, actor=actor
    )


def deposit_book(*, investor, amount_minor: int, currency: str, bank_reference: str, actor) -> Deposit:
    """The body of `deposit_record` inside the caller's transaction: the bank statement
    import (funding.py) books all lines of a statement in one transaction. The same
    checks, ledger entry, audit entry and mail; call it in a savepoint to survive a
    refusal."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("deposit_book must run inside the caller's transaction")
    _require_staff(actor, "marketplace.add_deposit", not_user=investor)
    amount_minor = _positive_int(amount_minor, what="amount")
    currency = currency_clean(currency)
    bank_reference = (bank_reference or "").strip()
    if not bank_reference:
        raise ValidationError({"bank_reference": "Give the bank's reference for the payment."})
    available, bank = ledger_accounts_lock(specs=[(A.INVESTOR_AVAILABLE, investor, currency), (A.BANK, None, currency)])
    deposit = Deposit(
        investor=investor,
        amount_minor=amount_minor,
        currency=currency,
        bank_reference=bank_reference,
        recorded_by=actor,
    )
    try:
        with transaction.atomic():
            deposit.save()
    except IntegrityError:
        raise ValidationError({"bank_reference": "A deposit with this bank reference is already recorded."}) from None
    ledger_post(
        kind=JournalEntry.Kind.DEPOSIT,
        legs=[Leg(bank, -amount_minor), Leg(available, amount_minor)],
        memo=f"Deposit {bank_reference}",
        created_by=actor,
        deposit=deposit,
    )
    webhook_events.deposit_booked(deposit)
    audit_record(
        actor=actor,
        action="cash.deposit_recorded",
        target=deposit,
        after={
            "investor": investor.pk,
            "amount_minor": amount_minor,
            "currency": currency,
            "bank_reference": bank_reference,
        },
    )
    notify(
        user=investor,
        subject=f"{format_money(amount_minor, currency)} received",
        body=f"We received {format_money(amount_minor, currency)} (bank reference {bank_reference}). "
        f"It is available in your account for purchases.",
        path=reverse("marketplace:portfolio"),
    )
    return deposit


@transaction.atomic(durable=True)
def withdrawal_request(*, investor, amount_minor: int, currency: str, payout_account=None) -> Withdrawal:
    """The investor asks for cash back to one of their payout accounts (a PayoutAccount
    or its public_id; usable: active and past its cooling-off period, see payouts.py);
    the cash is held until staff pay or reject it."""
    from .payouts import payout_account_for_withdrawal

    amount_minor = _positive_int(amount_minor, what="amount")
    currency = currency_clean(currency)
    available, held = ledger_accounts_lock(
        specs=[(A.INVESTOR_AVAILABLE, investor, currency), (A.INVESTOR_HELD, investor, currency)]
    )
    account = payout_account_for_withdrawal(investor=investor, payout_account=payout_account, currency=currency)
    if available.balance < amount_minor:
        raise ValidationError(
            f"You have {format_money(available.balance, currency)} available, less than {format_money(amount_minor, currency)}.",
            code="insufficient_cash",
        )
    withdrawal = Withdrawal.objects.create(
        investor=investor, amount_minor=amount_minor, currency=currency, payout_account=account
    )
    ledger_post(
        kind=JournalEntry.Kind.WITHDRAWAL_REQUEST,
        legs=[Leg(available, -amount_minor), Leg(held, amount_minor)],
        memo=f"Withdrawal {withdrawal.public_id.hex[:8]} requested",
        created_by=investor,
        withdrawal=withdrawal,
    )
    return withdrawal


def _withdrawal_decision_lock(withdrawal: Withdrawal, *, accounts) -> tuple[Withdrawal, list]:
    """Staff deciding a withdrawal: lock the ledger accounts (in the lock order) and then
    the withdrawal, which must still be waiting for a decision."""
    locked = ledger_accounts_lock(specs=[(kind, user, withdrawal.currency) for kind, user in accounts])
    withdrawal = withdrawal_lock(pk=withdrawal.pk)
    if withdrawal.status != Withdrawal.Status.REQUESTED:
        raise ValidationError(f"This withdrawal is already {withdrawal.get_status_display().lower()}.")
    if withdrawal.batch_id is not None:
        raise ValidationError(
            "This withdrawal is in an exported payout file: mark the batch sent or cancel it first.", code="in_batch"
        )
    return withdrawal, locked


@transaction.atomic(durable=True)
def withdrawal_approve(*, withdrawal: Withdrawal, actor, bank_reference: str) -> Withdrawal:
    """Staff: the money was sent to the investor's bank."""
    _require_staff(actor, "marketplace.change_withdrawal", not_user=withdrawal.investor)
    bank_reference = (bank_reference or "").strip()
    if not bank_reference:
        raise ValidationError({"bank_reference": "Give the bank's reference for the outgoing payment."})
    withdrawal, (held, bank) = _withdrawal_decision_lock(
        withdrawal, accounts=[(A.INVESTOR_HELD, withdrawal.investor), (A.BANK, None)]
    )
    return withdrawal_mark_paid(withdrawal=withdrawal, held=held, bank=bank, actor=actor, bank_reference=bank_reference)


def withdrawal_mark_paid(
    *, withdrawal: Withdrawal, held: LedgerAccount, bank: LedgerAccount, actor, bank_reference: str
) -> Withdrawal:
    """The one place a withdrawal becomes paid: the ledger entry (held -> bank), the
    status, the audit entry and the investor's mail. Runs inside the caller's transaction
    (withdrawal_approve, payouts.payout_batch_mark_sent), which holds the investor's held
    account and the bank account, then the withdrawal, locked and still requested."""
    if withdrawal.status != Withdrawal.Status.REQUESTED:
        raise ValidationError(f"This withdrawal is already {withdrawal.get_status_display().lower()}.")
    before = model_snapshot(withdrawal, ("status", "bank_reference"))
    ledger_post(
        kind=JournalEntry.Kind.WITHDRAWAL_PAID,
        legs=[Leg(held, -withdrawal.amount_minor), Leg(bank, withdrawal.amount_minor)],
        memo=f"Withdrawal paid {bank_reference}",
        created_by=actor,
        withdrawal=withdrawal,
    )
    withdrawal.status, withdrawal.bank_reference = Withdrawal.Status.PAID, bank_reference
    withdrawal.decided_by, withdrawal.decided_at = actor, timezone.now()
    withdrawal.save()
    webhook_events.withdrawal_paid(withdrawal)
    audit_record(
        actor=actor,
        action="cash.withdrawal_paid",
        target=withdrawal,
        before=before,
        after=model_snapshot(withdrawal, ("status", "bank_reference")),
    )
    notify(
        user=withdrawal.investor,
        subject=f"Withdrawal of {format_money(withdrawal.amount_minor, withdrawal.currency)} paid",
        body=f"We sent {format_money(withdrawal.amount_minor, withdrawal.currency)} to your bank "
        f"(reference {bank_reference}).",
        path=reverse("marketplace:portfolio"),
    )
    return withdrawal


@transaction.atomic(durable=True)
def withdrawal_reject(*, withdrawal: Withdrawal, actor, reason: str) -> Withdrawal:
    _require_staff(actor, "marketplace.change_withdrawal", not_user=withdrawal.investor)
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": "Tell the investor why."})
    withdrawal, (available, held) = _withdrawal_decision_lock(
        withdrawal, accounts=[(A.INVESTOR_AVAILABLE, withdrawal.investor), (A.INVESTOR_HELD, withdrawal.investor)]
    )
    ledger_post(
        kind=JournalEntry.Kind.WITHDRAWAL_REJECTED,
        legs=[Leg(held, -withdrawal.amount_minor), Leg(available, withdrawal.amount_minor)],
        memo="Withdrawal rejected",
        created_by=actor,
        withdrawal=withdrawal,
    )
    withdrawal.status, withdrawal.reason = Withdrawal.Status.REJECTED, reason
    withdrawal.decided_by, withdrawal.decided_at = actor, timezone.now()
    withdrawal.save()
    audit_record(
        actor=actor,
        action="cash.withdrawal_rejected",
        target=withdrawal,
        before={"status": Withdrawal.Status.REQUESTED},
        after={"status": withdrawal.status},
        reason=reason,
    )
    notify(
        user=withdrawal.investor,
        subject="Withdrawal not paid",
        body=f"We could not pay your withdrawal of {format_money(withdrawal.amount_minor, withdrawal.currency)}: "
        f"{reason}\nThe amount is available in your account again.",
        path=reverse("marketplace:portfolio"),
    )
    return withdrawal


# -- purchases ---------------------------------------------------------------------------

SETTLEMENT_KEY_PREFIX = "primary-order:"


def _offering_refusal(offering: Offering, quantity: int, at) -> ValidationError | None:
    """Why this offering cannot sell `quantity` now (status and window, then supply and
    the per-purchase limits): the first reason."""
    failure = offering_refusal(offering=offering, status=offering.current_status(at)) or next(
        iter(purchase_limit_failures(offering=offering, quantity=quantity)), None
    )
    return ValidationError(failure.message, code=failure.code) if failure else None


# Written out: asked on every purchase and almost always empty, it cost a tenth of a
# purchase's Python through the ORM (bench/purchase). At most one row: unique
# (investor, idempotency_key).
_ORDER_FOR_KEY_SQL = "SELECT * FROM marketplace_primaryorder WHERE investor_id = %s AND idempotency_key = %s"


def _order_for_key(*, investor, key: str) -> PrimaryOrder | None:
    return next(iter(PrimaryOrder.objects.raw(_ORDER_FOR_KEY_SQL, [investor.pk, key])), None)


@transaction.atomic(durable=True)
def order_place(*, investor, offering_id: int, quantity: int, idempotency_key: str) -> PrimaryOrder:
    """Buy `quantity` fractions from an offering, in one transaction: check supply,
    eligibility and cash, hold the cash, record the order and the pending holding, write
    the settlement's outbox row, and take the fractions from the offering last.

    Every buyer of an offering queues on its row lock, so nothing but the sale itself
    happens under it: the offering is read without a lock, everything is checked and
    written from that reading, and the last statement before the commit is one
    conditional UPDATE that takes the fractions only if the terms read are still the
    offering's and the supply covers them (`_offering_take`).

    Idempotent per (investor, idempotency_key): a repeated call returns the first order
    (with `.replayed = True`) and changes nothing. Raises ValidationError with the
    reasons (codes: sold_out, insufficient_supply, insufficient_cash, the eligibility
    engine's codes, offering_changed, ...)."""
    idempotency_key = (idempotency_key or "").strip()
    if not idempotency_key or len(idempotency_key) > 64:
        raise ValidationError("The form expired; reload the page and try again.", code="idempotency_key")
    offering = offering_read(pk=offering_id)
    asset, currency = offering.asset, offering.currency
    holding = holding_lock(investor=investor, asset=asset)
    available, held = ledger_accounts_lock(
        specs=[(A.INVESTOR_AVAILABLE, investor, currency), (A.INVESTOR_HELD, investor, currency)]
    )
    # Behind the investor's cash lock, so a second tab posting the same key waits for the
    # first and finds its order (the unique (investor, key) constraint is the last line).
    existing = _order_for_key(investor=investor, key=idempotency_key)
    if existing is not None:
        if existing.offering_id != offering.pk or existing.quantity != quantity:
            raise ValidationError(
                "This form was already used for another order; reload the page.", code="idempotency_conflict"
            )
        existing.replayed = True
        return existing
    if asset.max_holders is not None and not (holding.quantity or holding.pending_quantity):
        # A new holder of a capped asset: the holder count must not move until the commit,
        # so these purchases (and only these) take the offering lock before counting
        # (and are checked against what it then reads).
        offering = offering_lock(pk=offering.pk)
    quantity = _positive_int(quantity, what="quantity")
    now = timezone.now()
    refusal = _offering_refusal(offering, quantity, now)
    if refusal is not None:
        raise refusal

    eligibility = eligibility_check(
        investor=investor, asset=asset, quantity=quantity, direction=RECEIVE, at=now, holding=holding
    )
    if not eligibility.allowed:
        raise ValidationError([ValidationError(f.message, code=f.code) for f in eligibility.failures])

    gross = quantity * offering.price_per_fraction_minor
    fee = fee_for(gross_minor=gross, fee_bps=offering.fee_bps)
    total = gross + fee
    if available.balance < total:
        raise ValidationError(
            f"Not enough cash: the total is {format_money(total, currency)} and you have {format_money(available.balance, currency)} available.",
            code="insufficient_cash",
        )

    try:
        treasury, receiver = treasury_and_investor_account(investor)
    except ChainNotBootstrapped:
        raise ValidationError(
            "Settlement is not available right now; try again later.", code="chain_unavailable"
        ) from None
    receiver = receiver or investor_account_get_or_create(user=investor)
    order = PrimaryOrder(
        public_id=uuid.uuid4(),
        investor=investor,
        offering=offering,
        asset=asset,
        idempotency_key=idempotency_key,
        quantity=quantity,
        price_per_fraction_minor=offering.price_per_fraction_minor,
        gross_minor=gross,
        fee_minor=fee,
        total_minor=total,
        currency=currency,
        created_at=now,
    )
    order.chain_tx = outbox_request(
        kind=ChainTransaction.Kind.ASSET_TRANSFER,
        payload={
            "asset_id": asset.asa_id,
            "sender": treasury.address,
            "receiver": receiver.address,
            "amount": quantity,
        },
        idempotency_key=f"{SETTLEMENT_KEY_PREFIX}{order.public_id}",
        on_confirmed="marketplace.services.order_settlement_confirmed",
        on_failed="marketplace.services.order_settlement_failed",
        before_sign="marketplace.services.order_settlement_guard",
        accounts=(treasury, receiver),
    )
    rows.insert(order)
    ledger_post(
        kind=JournalEntry.Kind.PURCHASE_RESERVE,
        legs=[Leg(available, -total), Leg(held, total)],
        memo=f"{quantity} × {asset.unit_name}",
        created_by=investor,
        order=order,
    )
    with connection.cursor() as cursor:
        cursor.execute(_HOLDING_PENDING_SQL, [quantity, now, holding.pk])
    # Before the offering's UPDATE: the webhook read stays out of the offering lock's window.
    webhook_events.primary_order_event(order, EventKind.ORDER_ACCEPTED)
    _offering_take(offering, quantity, now)
    order.replayed = False
    return order


# The units bought, pending until the settlement confirms (the holding is locked above).
_HOLDING_PENDING_SQL = (
    "UPDATE marketplace_holding SET pending_quantity = pending_quantity + %s, updated_at = %s WHERE id = %s"
)


# What order_place priced and checked a purchase against; `_offering_take` sells only
# while the offering still has them.
OFFERING_TERMS = (
    "price_per_fraction_minor",
    "currency",
    "fee_bps",
    "min_purchase",
    "max_purchase",
    "opens_at",
    "closes_at",
    "status",
)

# Written out rather than built with the ORM: the same UPDATE through QuerySet.update
# (nine lookups and a Case) cost 1.7 ms of Python per purchase against 0.1 ms here
# (bench/purchase), on the one statement every buyer of an offering queues behind.
# Right-hand sides see the row before the update, so the CASE is "none left after".
_OFFERING_TAKE_SQL = (
    "UPDATE marketplace_offering SET fractions_sold = fractions_sold + %(q)s, "
    "status = CASE WHEN fractions_for_sale = fractions_sold + %(q)s AND status = %(open)s "
    "THEN %(sold_out)s ELSE status END, updated_at = %(now)s "
    "WHERE id = %(pk)s AND fractions_sold <= fractions_for_sale - %(q)s AND "
    + " AND ".join(f"{name} IS NOT DISTINCT FROM %({name})s" for name in OFFERING_TERMS)
    + " RETURNING status"
)


def _offering_take(offering: Offering, quantity: int, at) -> None:
    """Take `quantity` fractions from the offering, as order_place's last statement: a
    conditional UPDATE that waits for the offering's row lock and then holds it only
    until the commit. It matches when the terms are still those of `offering` (read
    without a lock) and the supply covers the quantity, so the database decides and
    nothing is oversold however many buyers race (the CHECK constraint backs it). When it
    matches nothing, the offering is locked and read again for the buyer's reason."""
    terms = {name: getattr(offering, name) for name in OFFERING_TERMS}

    def take() -> bool:
        params = dict(
            terms,
            q=quantity,
            pk=offering.pk,
            now=timezone.now(),
            open=Offering.Status.OPEN.value,
            sold_out=Offering.Status.SOLD_OUT.value,
        )
        with connection.cursor() as cursor:
            cursor.execute(_OFFERING_TAKE_SQL, params)
            row = cursor.fetchone()
        if row is None:
            return False
        offering_sold_changed(offering.asset_id)  # the offering page shows "Left"
        if row[0] == Offering.Status.SOLD_OUT:
            catalogue_changed()  # the catalogue's cards show "Sold out"
        return True

    if take():
        return
    current = offering_lock(pk=offering.pk)
    refusal = _offering_refusal(current, quantity, at)
    if refusal is not None:
        raise refusal
    if any(getattr(current, name) != value for name, value in terms.items()):
        raise ValidationError(
            "The offering's terms changed while you were buying; reload the page and check them.",
            code="offering_changed",
        )
    # Supply came back between the two statements (a compensation); under the lock now.
    if not take():
        raise LookupError(f"offering {offering.pk}: locked, checked, and still not taken")


def order_settlement_guard(chain_tx: ChainTransaction) -> None:
    """Outbox before_sign hook (worker): the compliance engine's second look, just before
    the transfer agent's key signs the settlement, and no delivery for an order staff
    have already refunded. Raises SigningRefused with the reasons; the row then fails and
    `order_settlement_failed` shows them to the investor and staff."""
    order = PrimaryOrder.objects.select_related("investor", "asset").get(chain_tx_id=chain_tx.pk)
    if order.status == OS.REFUNDED:
        raise SigningRefused("the order was refunded; its fractions are no longer reserved")
    check = settlement_check(investor=order.investor, asset=order.asset, quantity=order.quantity, direction=RECEIVE)
    if not check.allowed:
        raise SigningRefused(f"compliance check before settlement failed: {check.reason}")


def order_settlement_confirmed(chain_tx: ChainTransaction) -> None:
    """Outbox callback (worker), in the transaction that marks the settlement confirmed:
    the units are on chain, so they become settled and the held cash goes to the issuer
    and the platform's fee account."""
    order = PrimaryOrder.objects.select_related("investor", "asset__issuer").get(chain_tx_id=chain_tx.pk)
    holding = holding_lock(investor=order.investor, asset=order.asset)
    held, proceeds, fees = ledger_accounts_lock(
        specs=[
            (A.INVESTOR_HELD, order.investor, order.currency),
            (A.ISSUER_PROCEEDS, order.asset.issuer, order.currency),
            (A.PLATFORM_FEES, None, order.currency),
        ]
    )
    now = timezone.now()
    claimed = PrimaryOrder.objects.filter(pk=order.pk, status__in=[OS.RESERVED, OS.FAILED]).update(
        status=OS.SETTLED, settled_at=now, failure_reason=""
    )
    if not claimed:
        order.refresh_from_db()
        if order.status == OS.REFUNDED:
            # Staff refunded the order, then the same settlement was retried from the chain
            # admin and delivered. The books follow the chain; staff must settle the cash.
            Holding.objects.filter(pk=holding.pk).update(quantity=F("quantity") + order.quantity, updated_at=now)
            logger.error("order %s delivered on chain after it was refunded", order.public_id)
            audit_record(
                actor=None,
                action="order.delivered_after_refund",
                target=order,
                after={"quantity": order.quantity, "txid": chain_tx.txid},
                reason="Settlement confirmed after compensation: recover the cash or the units.",
            )
        return
    legs = [Leg(held, -order.total_minor), Leg(proceeds, order.gross_minor)]
    if order.fee_minor:
        legs.append(Leg(fees, order.fee_minor))
    ledger_post(
        kind=JournalEntry.Kind.PURCHASE_SETTLE,
        legs=legs,
        order=order,
        memo=f"Settled in round {chain_tx.confirmed_round}, txid {chain_tx.txid}",
    )
    Holding.objects.filter(pk=holding.pk).update(
        quantity=F("quantity") + order.quantity,
        pending_quantity=F("pending_quantity") - order.quantity,
        first_acquired_at=Coalesce(F("first_acquired_at"), now),
        updated_at=now,
    )
    order.status = OS.SETTLED
    webhook_events.primary_order_event(order, EventKind.ORDER_SETTLED)
    notify(
        user=order.investor,
        subject=f"{order.quantity:,} {order.asset.unit_name} delivered",
        body=f"Your {order.quantity:,} fractions of {order.asset.name} are in your custodial account: confirmed on "
        f"Algorand in round {chain_tx.confirmed_round}, transaction {chain_tx.txid}. "
        f"You paid {format_money(order.total_minor, order.currency)}.",
        path=reverse("marketplace:order", args=[order.public_id]),
    )


def order_settlement_failed(chain_tx: ChainTransaction) -> None:
    """Outbox callback: algod refused the settlement for good. Cash stays held and the
    fractions reserved until staff retry or compensate; the investor sees the failure."""
    reason = chain_tx.last_error or "settlement rejected"
    updated = PrimaryOrder.objects.filter(chain_tx_id=chain_tx.pk, status=OS.RESERVED).update(
        status=OS.FAILED, failure_reason=reason[:2000]
    )
    if updated:
        order = PrimaryOrder.objects.select_related("investor", "asset").get(chain_tx_id=chain_tx.pk)
        logger.error("order %s settlement failed: %s", order.public_id, reason)
        audit_record(
            actor=None,
            action="order.settlement_failed",
            target=order,
            before={"status": OS.RESERVED},
            after={"status": OS.FAILED},
            reason=reason,
        )
        notify(
            user=order.investor,
            subject="Your order could not be settled yet",
            body=f"The delivery of {order.quantity:,} fractions of {order.asset.name} did not go through. Your "
            f"{format_money(order.total_minor, order.currency)} stays reserved and nothing is lost: our team "
            f"will send it again or refund you, and you will hear from us either way.",
            path=reverse("marketplace:order", args=[order.public_id]),
        )


def _settlement_lock(order: PrimaryOrder) -> ChainTransaction:
    """The order's settlement row, locked. Every placed order has one; without it, the same
    DoesNotExist as the lookup."""
    if order.chain_tx_id is None:
        raise ChainTransaction.DoesNotExist("the order has no settlement transaction")
    return chain_transaction_lock(pk=order.chain_tx_id)


@transaction.atomic(durable=True)
def order_settlement_retry(*, order: PrimaryOrder, actor) -> PrimaryOrder:
    """Staff: send a failed settlement again (same order, same cash held)."""
    _require_staff(actor, "marketplace.change_primaryorder", not_user=order.investor)
    chain_tx = _settlement_lock(order)
    order = order_lock(pk=order.pk)
    if order.status != OS.FAILED or chain_tx.status != ChainTransaction.Status.FAILED:
        raise ValidationError("Only an order whose settlement failed can be retried.")
    outbox_retry(chain_tx=chain_tx, actor=actor)
    previous = order.failure_reason
    order.status, order.failure_reason = OS.RESERVED, ""
    order.save(update_fields=["status", "failure_reason"])
    audit_record(
        actor=actor,
        action="order.settlement_retried",
        target=order,
        before={"status": OS.FAILED},
        after={"status": OS.RESERVED},
        reason=previous,
    )
    return order


@transaction.atomic(durable=True)
def order_compensate(*, order: PrimaryOrder, actor, reason: str) -> PrimaryOrder:
    """Staff: give up on a failed settlement. The investor's cash is released and the
    reserved fractions go back to the offering."""
    _require_staff(actor, "marketplace.change_primaryorder", not_user=order.investor)
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": "Say why the order is refunded instead of retried."})
    chain_tx = _settlement_lock(order)
    if chain_tx.status != ChainTransaction.Status.FAILED:
        raise ValidationError("Only an order whose settlement failed can be compensated.")
    holding = holding_lock(investor=order.investor, asset=order.asset)
    available, held = ledger_accounts_lock(
        specs=[
            (A.INVESTOR_AVAILABLE, order.investor, order.currency),
            (A.INVESTOR_HELD, order.investor, order.currency),
        ]
    )
    offering = offering_lock(pk=order.offering_id)
    order = order_lock(pk=order.pk)
    if order.status != OS.FAILED:
        raise ValidationError("Only an order whose settlement failed can be compensated.")
    now = timezone.now()
    ledger_post(
        kind=JournalEntry.Kind.PURCHASE_REFUND,
        legs=[Leg(held, -order.total_minor), Leg(available, order.total_minor)],
        memo=f"Refund: {reason}",
        created_by=actor,
        order=order,
    )
    offering.fractions_sold -= order.quantity
    if offering.status == Offering.Status.SOLD_OUT:
        offering.status = Offering.Status.OPEN
    offering.save(update_fields=["fractions_sold", "status", "updated_at"])
    Holding.objects.filter(pk=holding.pk).update(
        pending_quantity=F("pending_quantity") - order.quantity, updated_at=now
    )
    order.status, order.refunded_at = OS.REFUNDED, now
    order.save(update_fields=["status", "refunded_at"])
    audit_record(
        actor=actor,
        action="order.compensated",
        target=order,
        before={"status": OS.FAILED},
        after={
            "status": OS.REFUNDED,
            "refund_minor": order.total_minor,
            "currency": order.currency,
            "released_fractions": order.quantity,
        },
        reason=reason,
    )
    notify(
        user=order.investor,
        subject=f"Order refunded: {format_money(order.total_minor, order.currency)}",
        body=f"We refunded your order for {order.quantity:,} fractions of {order.asset.name}: "
        f"{format_money(order.total_minor, order.currency)} is available in your account again.\n\n{reason}",
        path=reverse("marketplace:order", args=[order.public_id]),
    )
    return order
