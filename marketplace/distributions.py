"""Income distributions (docs/distributions.md): declare, approve (four eyes), fund, pay
pro rata to the holders at the record date-time, hold what compliance stops, release or
return it later.

Entitlement comes from the books' history of unit movements, never from today's
balances (`units_at`): a primary purchase counts from its order until it is refunded, a
secondary trade moves units from the seller to the buyer from its match until it is
reversed. Settled or not, the buyer owns from the trade; units locked in open sell
orders still belong to their owner. The treasury's units (supply − Σ holders) earn the
issuer's share, paid to the issuer's proceeds account.

Shares are pro rata with largest-remainder rounding (`allocate`): Σ shares = gross,
exactly. Withholding per investor (`compliance.withholding`), rounded down. Paying runs
in batches, each one transaction with one journal entry and a constant number of
statements; a crashed run resumes where it stopped and pays nobody twice (a share moves
from pending to paid or held under the distribution's row lock)."""

from __future__ import annotations

import datetime
from collections import defaultdict
from dataclasses import dataclass
from typing import NamedTuple

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q, Sum
from django.utils import timezone

from assets.models import Asset, AssetDocument
from compliance.audit import audit_record, model_snapshot
from compliance.eligibility import income_check_many
from compliance.withholding import withheld_for, withholding_rates_for_many
from config.money import MAX_MINOR, format_money

from . import webhook_events
from .bulk_sql import insert_rows, update_from_values
from .ledger import Leg, ledger_post
from .locks import distribution_lock, ledger_accounts_lock, ledger_accounts_lock_bulk
from .models import Distribution, DistributionPayment, JournalEntry, LedgerAccount, Offering, PrimaryOrder, Trade

D = Distribution.Status
P = DistributionPayment.Status
K = LedgerAccount.Kind
APPROVE_PERMISSION = "marketplace.approve_distribution"
PAY_PERMISSION = "marketplace.pay_distribution"
RELEASE_PERMISSION = "marketplace.release_distribution_payment"
NOTE_MAX = 1000
BATCH_SIZE = 2000
SNAPSHOT = (
    "status",
    "kind",
    "gross_minor",
    "currency",
    "record_at",
    "payment_date",
    "funded_minor",
    "approved_by",
    "cancel_reason",
)


def _staff_with(user, permission: str) -> bool:
    return bool(user.is_authenticated and user.is_active and user.is_staff and user.has_perm(permission))


def can_declare(user, asset: Asset) -> bool:
    """The asset's issuer, or staff who may approve or pay distributions."""
    if not (user.is_authenticated and user.is_active):
        return False
    return user.pk == asset.issuer_id or _staff_with(user, APPROVE_PERMISSION) or _staff_with(user, PAY_PERMISSION)


def _text(value, *, label: str, limit: int) -> str:
    if not isinstance(value, str):
        raise ValidationError(f"The {label} must be text.", code="invalid")
    if "\x00" in value:
        raise ValidationError(f"The {label} cannot contain a NUL character.", code="nul")
    value = value.strip()
    if len(value) > limit:
        raise ValidationError(f"The {label} can be at most {limit:,} characters.", code="too_long")
    return value


# Entitlement ---------------------------------------------------------------------------


def units_at(*, asset_id: int, at: datetime.datetime) -> dict[int, int]:
    """Units each investor owned of the asset at `at`, from the history of unit
    movements (three grouped queries, whatever the number of holders). Investors with
    zero are left out."""
    units: dict[int, int] = defaultdict(int)
    bought = (
        PrimaryOrder.objects.filter(asset_id=asset_id, created_at__lte=at)
        .exclude(refunded_at__lte=at)
        .values_list("investor_id")
        .annotate(n=Sum("quantity"))
        .order_by()
    )
    for investor_id, n in bought:
        units[investor_id] += n
    trades = Trade.objects.filter(asset_id=asset_id, created_at__lte=at).exclude(reversed_at__lte=at)
    for investor_id, n in trades.values_list("buyer_id").annotate(n=Sum("quantity")).order_by():
        units[investor_id] += n
    for investor_id, n in trades.values_list("seller_id").annotate(n=Sum("quantity")).order_by():
        units[investor_id] -= n
    negative = {i: n for i, n in units.items() if n < 0}
    if negative:  # the books never let anyone sell what they did not own
        raise AssertionError(f"negative unit history at {at.isoformat()}: {negative}")
    return {i: n for i, n in units.items() if n > 0}


@dataclass(frozen=True)
class Share:
    investor_id: int
    treasury: bool
    units: int
    gross_minor: int


def allocate(*, gross_minor: int, holders: list[tuple[int, bool, int]], total_units: int) -> list[Share]:
    """Split `gross_minor` over `holders` [(investor_id, treasury, units)] pro rata to
    units of `total_units`, by largest remainder: each gets floor(gross × units / total);
    the minor units left over go one each to the largest remainders. Ties: more units
    first, then holders before the treasury, then the lower investor id. Σ = gross."""
    if total_units <= 0 or sum(u for _, _, u in holders) != total_units:
        raise ValueError("holders' units must add up to the total")
    floors: list[list] = []
    for investor_id, treasury, units in holders:
        share, remainder = divmod(gross_minor * units, total_units)
        floors.append([investor_id, treasury, units, share, remainder])
    left = gross_minor - sum(f[3] for f in floors)
    for f in sorted(floors, key=lambda f: (-f[4], -f[2], f[1], f[0]))[:left]:
        f[3] += 1
    return [Share(investor_id=f[0], treasury=f[1], units=f[2], gross_minor=f[3]) for f in floors]


def entitlements(distribution: Distribution) -> list[Share]:
    """Every holder's share at the record date-time, and the treasury's (the issuer)."""
    asset = distribution.asset
    held = units_at(asset_id=asset.pk, at=distribution.record_at)
    holders: list[tuple[int, bool, int]] = sorted((i, False, n) for i, n in held.items())
    treasury = asset.total_fractions - sum(held.values())
    if treasury < 0:
        raise AssertionError(f"more units held than the supply of {asset}")
    if treasury:
        holders.append((asset.issuer_id, True, treasury))
    return allocate(gross_minor=distribution.gross_minor, holders=holders, total_units=asset.total_fractions)


# Declaring, approving, cancelling ------------------------------------------------------


def _offering_currency(asset: Asset) -> str | None:
    return Offering.objects.filter(asset_id=asset.pk).values_list("currency", flat=True).first()


def declaration_failures(
    *, asset: Asset, kind, gross_minor, currency, period_start, period_end, record_at, payment_date, note
) -> dict[str, list[str]]:
    """Every rule of a new declaration, per field; empty when it may be declared."""
    failures: dict[str, list[str]] = defaultdict(list)
    if kind not in Distribution.Kind.values:
        failures["kind"].append("Choose the kind of distribution.")
    if isinstance(gross_minor, bool) or not isinstance(gross_minor, int):
        failures["gross_minor"].append("The gross amount must be a whole number of minor units.")
    elif gross_minor < 1:
        failures["gross_minor"].append("The gross amount must be greater than zero.")
    elif gross_minor > MAX_MINOR:
        failures["gross_minor"].append("The gross amount is too large.")
    if asset.status != Asset.Status.LIVE:
        failures["__all__"].append("Only a live asset pays distributions.")
    offering_currency = _offering_currency(asset)
    if offering_currency is not None and currency != offering_currency:
        failures["currency"].append(f"Distributions of this asset are paid in {offering_currency}, its currency.")
    dates_ok = True
    for field, value in (("period_start", period_start), ("period_end", period_end), ("payment_date", payment_date)):
        if isinstance(value, datetime.datetime) or not isinstance(value, datetime.date):
            failures[field].append("Give a date.")
            dates_ok = False
    if not isinstance(record_at, datetime.datetime) or timezone.is_naive(record_at):
        failures["record_at"].append("Give the record date and time.")
        dates_ok = False
    if dates_ok:
        if period_start > period_end:
            failures["period_end"].append("The period ends before it starts.")
        if timezone.localdate(record_at) > payment_date:
            failures["record_at"].append("The record date must be on or before the payment date.")
        if payment_date < timezone.localdate():
            failures["payment_date"].append("The payment date cannot be in the past.")
        if asset.live_at and record_at < asset.live_at:
            failures["record_at"].append("The record date is before the asset went live.")
    try:
        _text(note, label="note", limit=NOTE_MAX)
    except ValidationError as exc:
        failures["note"].extend(exc.messages)
    return dict(failures)


@transaction.atomic(durable=True)
def distribution_declare(
    *,
    asset: Asset,
    actor,
    kind: str,
    gross_minor: int,
    currency: str,
    period_start: datetime.date,
    period_end: datetime.date,
    record_at: datetime.datetime,
    payment_date: datetime.date,
    note: str = "",
    document: AssetDocument | None = None,
) -> Distribution:
    if not can_declare(actor, asset):
        raise PermissionDenied("Only the asset's issuer or staff can declare its distributions.")
    asset = Asset.objects.select_for_update().get(pk=asset.pk)
    failures = declaration_failures(
        asset=asset,
        kind=kind,
        gross_minor=gross_minor,
        currency=currency,
        period_start=period_start,
        period_end=period_end,
        record_at=record_at,
        payment_date=payment_date,
        note=note,
    )
    if document is not None and document.asset_id != asset.pk:
        failures.setdefault("document", []).append("The document must belong to this asset's data room.")
    if failures:
        raise ValidationError(failures)
    distribution = Distribution.objects.create(
        asset=asset,
        kind=kind,
        gross_minor=gross_minor,
        currency=currency,
        period_start=period_start,
        period_end=period_end,
        record_at=record_at,
        payment_date=payment_date,
        note=note.strip(),
        document=document,
        declared_by=actor,
    )
    audit_record(
        actor=actor, action="distribution.declared", target=distribution, after=model_snapshot(distribution, SNAPSHOT)
    )
    return distribution


def _transition(distribution: Distribution, actor, action: str, reason: str = "") -> None:
    audit_record(
        actor=actor, action=action, target=distribution, after=model_snapshot(distribution, SNAPSHOT), reason=reason
    )


@transaction.atomic(durable=True)
def distribution_approve(*, distribution: Distribution, actor) -> Distribution:
    """A second person with the permission approves; never the declarer, never the issuer."""
    if not _staff_with(actor, APPROVE_PERMISSION):
        raise PermissionDenied("Only staff with the approval permission can approve a distribution.")
    distribution = distribution_lock(pk=distribution.pk)
    if actor.pk in (distribution.declared_by_id, distribution.asset.issuer_id):
        raise PermissionDenied("Four eyes: a distribution is approved by somebody other than its declarer and issuer.")
    if distribution.status != D.DECLARED:
        raise ValidationError(
            f"Only a declared distribution can be approved; this one is {distribution.get_status_display().lower()}.",
            code="not_declared",
        )
    distribution.status, distribution.approved_by, distribution.approved_at = D.APPROVED, actor, timezone.now()
    distribution.save(update_fields=["status", "approved_by", "approved_at"])
    _transition(distribution, actor, "distribution.approved")
    return distribution


def _funds_accounts(distribution: Distribution):
    return ledger_accounts_lock(
        specs=[
            (K.DISTRIBUTION_FUNDS, None, distribution.currency),
            (K.ISSUER_PROCEEDS, distribution.asset.issuer, distribution.currency),
        ]
    )


@transaction.atomic(durable=True)
def distribution_cancel(*, distribution: Distribution, actor, reason: str) -> Distribution:
    """Before any payment: staff, or the issuer while it is not yet approved. Money
    already funded goes back to the issuer's proceeds account."""
    reason = _text(reason, label="reason", limit=NOTE_MAX)
    distribution = distribution_lock(pk=distribution.pk)
    is_staff = _staff_with(actor, APPROVE_PERMISSION) or _staff_with(actor, PAY_PERMISSION)
    is_issuer = actor.is_authenticated and actor.pk == distribution.asset.issuer_id
    if not (is_staff or (is_issuer and distribution.status == D.DECLARED)):
        raise PermissionDenied("Only staff can cancel an approved distribution; its issuer only before approval.")
    if distribution.status not in (D.DECLARED, D.APPROVED):
        raise ValidationError(
            f"A distribution that is {distribution.get_status_display().lower()} cannot be cancelled.",
            code="not_cancellable",
        )
    if not reason:
        raise ValidationError("Give a reason for the cancellation.", code="reason_required")
    if distribution.funded_minor:
        funds, proceeds = _funds_accounts(distribution)
        ledger_post(
            kind=JournalEntry.Kind.DISTRIBUTION_RETURN,
            legs=[Leg(funds, -distribution.funded_minor), Leg(proceeds, distribution.funded_minor)],
            memo=f"Cancelled distribution #{distribution.pk}: funding returned to the issuer",
            created_by=actor,
            distribution=distribution,
        )
        distribution.funded_minor = 0
    distribution.status, distribution.cancelled_by, distribution.cancelled_at = D.CANCELLED, actor, timezone.now()
    distribution.cancel_reason = reason
    distribution.save(update_fields=["status", "cancelled_by", "cancelled_at", "cancel_reason", "funded_minor"])
    _transition(distribution, actor, "distribution.cancelled", reason)
    return distribution


# Funding -------------------------------------------------------------------------------

FUND_FROM_PROCEEDS = "issuer_proceeds"
FUND_BY_DEPOSIT = "deposit"


@transaction.atomic(durable=True)
def distribution_fund(
    *, distribution: Distribution, actor, amount_minor: int, source: str, bank_reference: str = ""
) -> Distribution:
    """Staff with the pay permission fund a declared or approved distribution, up to its
    gross amount: by a deposit received for it (the bank), or from the issuer's proceeds."""
    if not _staff_with(actor, PAY_PERMISSION):
        raise PermissionDenied("Only staff with the distribution payment permission can fund a distribution.")
    bank_reference = _text(bank_reference, label="bank reference", limit=100)
    distribution = distribution_lock(pk=distribution.pk)
    if distribution.status not in (D.DECLARED, D.APPROVED):
        raise ValidationError(
            f"A distribution that is {distribution.get_status_display().lower()} cannot be funded.",
            code="not_fundable",
        )
    if isinstance(amount_minor, bool) or not isinstance(amount_minor, int) or amount_minor < 1:
        raise ValidationError("The amount must be greater than zero.", code="amount")
    missing = distribution.gross_minor - distribution.funded_minor
    if amount_minor > missing:
        raise ValidationError(
            f"Only {format_money(missing, distribution.currency)} is still to be funded.", code="over_funded"
        )
    funds, proceeds = _funds_accounts(distribution)
    if source == FUND_FROM_PROCEEDS:
        if proceeds.balance < amount_minor:
            raise ValidationError(
                f"The issuer's proceeds are {format_money(proceeds.balance, distribution.currency)}, "
                f"less than {format_money(amount_minor, distribution.currency)}.",
                code="insufficient",
            )
        source_account = proceeds
        memo = f"Distribution #{distribution.pk} funded from the issuer's proceeds"
    elif source == FUND_BY_DEPOSIT:
        if not bank_reference:
            raise ValidationError("Give the bank reference of the deposit.", code="reference_required")
        (source_account,) = ledger_accounts_lock(specs=[(K.BANK, None, distribution.currency)])
        memo = f"Distribution #{distribution.pk} funded by deposit {bank_reference}"
    else:
        raise ValidationError("Choose where the money comes from.", code="source")
    ledger_post(
        kind=JournalEntry.Kind.DISTRIBUTION_FUND,
        legs=[Leg(source_account, -amount_minor), Leg(funds, amount_minor)],
        memo=memo,
        created_by=actor,
        distribution=distribution,
    )
    distribution.funded_minor += amount_minor
    distribution.save(update_fields=["funded_minor"])
    _transition(distribution, actor, "distribution.funded", memo)
    return distribution


# Paying --------------------------------------------------------------------------------


def pay_refusal(distribution: Distribution, *, now=None) -> str:
    """Why this distribution cannot be paid now ('' when it can)."""
    now = now or timezone.now()
    if distribution.status == D.PAID:
        return "It has been paid."
    if distribution.status == D.CANCELLED:
        return "It was cancelled."
    if distribution.status == D.DECLARED:
        return "It waits for approval by a second person."
    if not distribution.is_fully_funded:
        return (
            f"It is not fully funded: {format_money(distribution.funded_minor, distribution.currency)} of "
            f"{format_money(distribution.gross_minor, distribution.currency)}."
        )
    if distribution.record_at > now:
        return f"The record date ({timezone.localtime(distribution.record_at):%Y-%m-%d %H:%M}) has not passed."
    return ""


@dataclass
class PayReport:
    batches: int = 0
    paid: int = 0
    held: int = 0
    already_done: bool = False


def _start(distribution_id: int, actor, now) -> Distribution | None:
    """Approved → paying: compute and store every share, once, under the lock."""
    with transaction.atomic(durable=True):
        distribution = distribution_lock(pk=distribution_id)
        if distribution.status == D.PAYING:
            return distribution
        if distribution.status == D.PAID:
            return None
        refusal = pay_refusal(distribution, now=now)
        if refusal:
            raise ValidationError(f"This distribution cannot be paid: {refusal}", code="not_payable")
        shares = entitlements(distribution)
        insert_rows(
            DistributionPayment,
            columns=["investor", "treasury", "units", "gross_minor"],
            rows=[(s.investor_id, s.treasury, s.units, s.gross_minor) for s in shares],
            constants={"distribution": distribution.pk},
        )
        distribution.status, distribution.paying_started_at = D.PAYING, now
        distribution.total_units = distribution.asset.total_fractions
        distribution.paid_by = actor if getattr(actor, "is_authenticated", False) else None
        distribution.save(update_fields=["status", "paying_started_at", "total_units", "paid_by"])
        _transition(distribution, actor, "distribution.paying")
        return distribution


class _Pending(NamedTuple):
    pk: int
    investor_id: int
    treasury: bool
    gross_minor: int


def _pending_shares(distribution: Distribution, batch_size: int) -> list[_Pending]:
    """The next `batch_size` pending shares, in pk order (the fields booking needs)."""
    rows = (
        DistributionPayment.objects.filter(distribution=distribution, status=P.PENDING)
        .order_by("pk")
        .values_list("pk", "investor_id", "treasury", "gross_minor")[:batch_size]
    )
    return [_Pending(*row) for row in rows]


# A share as booked: the columns `_pay_batch` writes, in this order, after the pk.
BOOKED = ("status", "withholding_rate_bps", "withheld_minor", "net_minor", "hold_codes", "hold_reason")


def _pay_batch(distribution_id: int, actor, now, batch_size: int) -> tuple[int, int] | None:
    """Book the next batch of pending shares in one transaction; None when none is left.
    Statements per batch do not depend on its size."""
    with transaction.atomic(durable=True):
        distribution = distribution_lock(pk=distribution_id)
        if distribution.status != D.PAYING:
            return None
        batch = _pending_shares(distribution, batch_size)
        if not batch:
            return None
        investor_ids = {p.investor_id for p in batch if not p.treasury}
        eligible = income_check_many(investor_ids=investor_ids, at=now)
        rates = withholding_rates_for_many(investor_ids)
        currency = distribution.currency
        paid_to = {p.investor_id for p in batch if not p.treasury and eligible[p.investor_id].allowed}
        issuer = {p.investor_id for p in batch if p.treasury}
        platform, users = ledger_accounts_lock_bulk(
            currency=currency,
            platform_kinds=(K.DISTRIBUTION_FUNDS, K.WITHHOLDING_TAX, K.DISTRIBUTION_SUSPENSE),
            user_kinds={K.INVESTOR_AVAILABLE: paid_to, K.ISSUER_PROCEEDS: issuer},
        )
        amounts: dict[LedgerAccount, int] = defaultdict(int)
        booked: list[tuple] = []  # (pk, *BOOKED)
        paid_ids: list[int] = []
        paid_events: list[tuple[int, int, int, int]] = []  # (investor, gross, withheld, net)
        held = 0
        for p in batch:
            if p.treasury:
                booked.append((p.pk, P.PAID, 0, 0, p.gross_minor, "", ""))
                amounts[users[(K.ISSUER_PROCEEDS, p.investor_id)]] += p.gross_minor
            elif p.investor_id in paid_to:
                rate = rates[p.investor_id].rate_bps
                withheld = withheld_for(p.gross_minor, rate)
                net = p.gross_minor - withheld
                booked.append((p.pk, P.PAID, rate, withheld, net, "", ""))
                amounts[users[(K.INVESTOR_AVAILABLE, p.investor_id)]] += net
                amounts[platform[K.WITHHOLDING_TAX]] += withheld
                paid_events.append((p.investor_id, p.gross_minor, withheld, net))
                if net > 0:
                    paid_ids.append(p.pk)
            else:
                result = eligible[p.investor_id]
                booked.append((p.pk, P.HELD, 0, 0, 0, ",".join(result.codes)[:200], result.reason[:1000]))
                amounts[platform[K.DISTRIBUTION_SUSPENSE]] += p.gross_minor
                held += 1
        total = sum(p.gross_minor for p in batch)
        legs = [Leg(platform[K.DISTRIBUTION_FUNDS], -total)] + [Leg(a, n) for a, n in amounts.items() if n]
        entry = None
        if total:
            entry = ledger_post(
                kind=JournalEntry.Kind.DISTRIBUTION_PAY,
                legs=legs,
                memo=f"Distribution #{distribution.pk}: {len(batch)} holders",
                created_by=actor if getattr(actor, "is_authenticated", False) else None,
                distribution=distribution,
                wide=True,
            )
        update_from_values(
            DistributionPayment,
            columns=BOOKED,
            rows=booked,
            constants={"entry": entry.pk if entry else None, "paid_at": now},
        )
        webhook_events.distribution_paid(distribution=distribution, paid=paid_events)
        if paid_ids:
            from .tasks import distribution_mails_send, distribution_reinvest

            transaction.on_commit(lambda: distribution_mails_send.delay(paid_ids))
            transaction.on_commit(lambda: distribution_reinvest.delay(paid_ids))
        return len(batch) - held, held


def _finish(distribution_id: int, actor, now) -> None:
    with transaction.atomic(durable=True):
        distribution = distribution_lock(pk=distribution_id)
        if distribution.status != D.PAYING:
            return
        if DistributionPayment.objects.filter(distribution=distribution, status=P.PENDING).exists():
            return
        distribution.status, distribution.paid_at = D.PAID, now
        distribution.save(update_fields=["status", "paid_at"])
        _transition(distribution, actor, "distribution.paid")


def distribution_pay(*, distribution: Distribution, actor=None, batch_size: int = BATCH_SIZE) -> PayReport:
    """Pay every holder. Idempotent and resumable: run it again after a crash (or twice
    in parallel) and it books only what is still pending. `actor` None: the beat task."""
    if actor is not None and getattr(actor, "is_authenticated", False) and not _staff_with(actor, PAY_PERMISSION):
        raise PermissionDenied("Only staff with the distribution payment permission can pay a distribution.")
    now = timezone.now()
    report = PayReport()
    if _start(distribution.pk, actor, now) is None:
        report.already_done = True
        return report
    while (outcome := _pay_batch(distribution.pk, actor, now, batch_size)) is not None:
        report.batches += 1
        report.paid += outcome[0]
        report.held += outcome[1]
    _finish(distribution.pk, actor, now)
    return report


def distributions_due(*, today: datetime.date | None = None):
    """Approved, fully funded distributions whose payment date has come (and runs that
    stopped half-way)."""
    today = today or timezone.localdate()
    return Distribution.objects.filter(
        Q(status=D.APPROVED, payment_date__lte=today, record_at__lte=timezone.now()) | Q(status=D.PAYING)
    ).order_by("payment_date", "pk")


# Held payments -------------------------------------------------------------------------


@transaction.atomic(durable=True)
def held_payment_decide(*, payment: DistributionPayment, actor, release: bool, reason: str) -> DistributionPayment:
    """Compliance releases a held payment to the investor (withholding applies then), or
    returns it to the issuer. Release only when the investor may be paid again."""
    if not _staff_with(actor, RELEASE_PERMISSION):
        raise PermissionDenied("Only compliance staff with the permission can release or return a held payment.")
    reason = _text(reason, label="reason", limit=NOTE_MAX)
    if not reason:
        raise ValidationError("Give a reason.", code="reason_required")
    distribution = distribution_lock(pk=payment.distribution_id)
    payment = DistributionPayment.objects.get(pk=payment.pk)
    if actor.pk in (payment.investor_id, distribution.asset.issuer_id):
        raise PermissionDenied("Four eyes: nobody decides on a payment held for themselves or their own asset.")
    if payment.status != P.HELD:
        raise ValidationError(
            f"Only a held payment can be released or returned; this one is {payment.get_status_display().lower()}.",
            code="not_held",
        )
    now = timezone.now()
    currency = distribution.currency
    if release:
        verdict = income_check_many(investor_ids=[payment.investor_id], at=now)[payment.investor_id]
        if not verdict.allowed:
            raise ValidationError(f"The investor still cannot be paid: {verdict.reason}", code="still_ineligible")
        rate = withholding_rates_for_many([payment.investor_id])[payment.investor_id].rate_bps
        suspense, available, withholding = ledger_accounts_lock(
            specs=[
                (K.DISTRIBUTION_SUSPENSE, None, currency),
                (K.INVESTOR_AVAILABLE, payment.investor, currency),
                (K.WITHHOLDING_TAX, None, currency),
            ]
        )
        payment.withholding_rate_bps = rate
        payment.withheld_minor = withheld_for(payment.gross_minor, rate)
        payment.net_minor = payment.gross_minor - payment.withheld_minor
        legs = [Leg(suspense, -payment.gross_minor), Leg(available, payment.net_minor)]
        if payment.withheld_minor:
            legs.append(Leg(withholding, payment.withheld_minor))
        payment.status = P.RELEASED
        kind = JournalEntry.Kind.DISTRIBUTION_RELEASE
    else:
        suspense, proceeds = ledger_accounts_lock(
            specs=[(K.DISTRIBUTION_SUSPENSE, None, currency), (K.ISSUER_PROCEEDS, distribution.asset.issuer, currency)]
        )
        legs = [Leg(suspense, -payment.gross_minor), Leg(proceeds, payment.gross_minor)]
        payment.status = P.RETURNED
        kind = JournalEntry.Kind.DISTRIBUTION_RETURN
    if payment.gross_minor:
        ledger_post(
            kind=kind,
            legs=[leg for leg in legs if leg.amount_minor],
            memo=f"Held payment of distribution #{distribution.pk}: {reason}"[:300],
            created_by=actor,
            distribution=distribution,
        )
    payment.decided_by, payment.decided_at = actor, now
    payment.save()
    audit_record(
        actor=actor,
        action="distribution.payment_released" if release else "distribution.payment_returned",
        target=payment,
        after=model_snapshot(payment, ("status", "gross_minor", "net_minor", "withheld_minor")),
        reason=reason,
    )
    return payment


def distribution_mails(payment_ids: list[int]) -> int:
    """Tell each paid holder what they received (net, withheld) with a link to their
    distributions; one connection for the whole batch. A failure is logged; the money
    stands and the investor sees it in the portfolio."""
    from django.conf import settings
    from django.core.mail import EmailMessage, get_connection
    from django.urls import reverse

    payments = DistributionPayment.objects.filter(
        pk__in=payment_ids, status__in=DistributionPayment.PAID_OUT, treasury=False
    ).select_related("investor", "distribution__asset")
    link = f"{settings.PUBLIC_BASE_URL.rstrip('/')}{reverse('marketplace:distributions')}"
    messages = []
    for p in payments:
        if not p.investor.email or p.net_minor <= 0:
            continue
        d = p.distribution
        withheld = (
            f", after {format_money(p.withheld_minor, d.currency)} tax withheld ({p.withholding_rate_bps / 100:g} %)"
            if p.withheld_minor
            else ""
        )
        body = (
            f"{d.get_kind_display()} of {d.asset.name} for {d.period_start:%d %b %Y} – {d.period_end:%d %b %Y}: "
            f"you received {format_money(p.net_minor, d.currency)} for {p.units:,} fractions{withheld}. "
            f"It is in your available cash.\n\n{link}\n\n— RWA Marketplace\n"
            "You receive this because you have an account with us."
        )
        messages.append(
            EmailMessage(
                subject=f"[RWA Marketplace] {d.get_kind_display()} paid: {d.asset.name}",
                body=body,
                to=[p.investor.email],
            )
        )
    if not messages:
        return 0
    try:
        return get_connection().send_messages(messages) or 0
    except Exception:  # the payment stands; the portfolio shows it
        import logging

        logging.getLogger("marketplace.distributions").exception("distribution mails could not be sent")
        return 0


# Reinvestment ------------------------------------------------------------------------------


def _affordable(net_minor: int, cost) -> int:
    """The most whole fractions `cost(q)` (their total cash need) lets `net_minor` buy."""
    low, high = 0, net_minor  # cost(q) >= q for any price of at least one minor unit
    while low < high:
        mid = (low + high + 1) // 2
        if cost(mid) <= net_minor:
            low = mid
        else:
            high = mid - 1
    return low


def reinvest_payment(payment_id: int) -> str:
    """Carry out the holder's reinvestment instruction for one paid share: buy as many
    whole fractions as its net amount pays for (fee included), in the open offering or
    with a good-till-cancelled buy order at the holder's limit. Idempotent (the order's
    idempotency key is the share's id). The order goes through the same services as a
    click, with every check; a refusal leaves the cash where it is. Returns the note
    stored on the share."""
    from .models import ReinvestmentInstruction, TradeOrder
    from .selectors import order_quote
    from .services import order_place
    from .trading import trade_order_place
    from .trading_selectors import buy_reservation

    payment = (
        DistributionPayment.objects.select_related("distribution__asset", "investor")
        .filter(pk=payment_id, status__in=DistributionPayment.PAID_OUT, treasury=False)
        .first()
    )
    if payment is None or payment.reinvestment:
        return payment.reinvestment if payment else ""
    asset = payment.distribution.asset
    instruction = ReinvestmentInstruction.objects.filter(investor=payment.investor, asset=asset).first()
    if instruction is None:
        return ""
    key = f"reinvest-{payment.public_id.hex}"
    try:
        if instruction.target == ReinvestmentInstruction.Target.PRIMARY:
            offering = Offering.objects.filter(asset=asset).first()
            if offering is None or offering.current_status() != Offering.Status.OPEN:
                note = "Not reinvested: the offering is not open; the amount stays in your cash."
            else:
                quantity = _affordable(
                    payment.net_minor, lambda q: order_quote(offering=offering, quantity=q).total_minor
                )
                if offering.max_purchase:
                    quantity = min(quantity, offering.max_purchase)
                if quantity < max(offering.min_purchase, 1):
                    note = "Not reinvested: the amount does not buy a whole fraction; it stays in your cash."
                else:
                    bought = order_place(
                        investor=payment.investor, offering_id=offering.pk, quantity=quantity, idempotency_key=key
                    )
                    note = f"Reinvested: bought {bought.quantity:,} fractions in the offering."
        else:
            from .trading_selectors import market_for_asset

            market = market_for_asset(asset=asset)
            limit = instruction.limit_price_minor or 0
            fee_bps = market.max_fee_bps if market else 0
            quantity = _affordable(
                payment.net_minor,
                lambda q: buy_reservation(limit_price_minor=limit, quantity=q, fee_bps=fee_bps),
            )
            if quantity < 1:
                note = "Not reinvested: the amount does not buy a whole fraction at your limit; it stays in your cash."
            else:
                order = trade_order_place(
                    investor=payment.investor,
                    asset=asset,
                    side=TradeOrder.Side.BUY,
                    quantity=quantity,
                    limit_price_minor=limit,
                    time_in_force=TradeOrder.TimeInForce.GTC,
                    idempotency_key=key,
                )
                note = (
                    f"Reinvested: buy order for {order.quantity:,} fractions at "
                    f"{format_money(limit, payment.distribution.currency)} ({order.get_status_display().lower()})."
                )
    except ValidationError as exc:
        note = f"Not reinvested: {' '.join(exc.messages)[:200]} The amount stays in your cash."
    DistributionPayment.objects.filter(pk=payment.pk, reinvestment="").update(reinvestment=note[:300])
    return note


def reinvest_payments(payment_ids: list[int]) -> int:
    """Reinvest each share whose holder asked for it; returns how many had an instruction."""
    from .models import ReinvestmentInstruction

    shares = DistributionPayment.objects.filter(pk__in=payment_ids, treasury=False).values_list(
        "pk", "investor_id", "distribution__asset_id"
    )
    wanted = set(
        ReinvestmentInstruction.objects.filter(
            investor_id__in={s[1] for s in shares}, asset_id__in={s[2] for s in shares}
        ).values_list("investor_id", "asset_id")
    )
    done = 0
    for pk, investor_id, asset_id in shares:
        if (investor_id, asset_id) in wanted:
            reinvest_payment(pk)
            done += 1
    return done


REINVEST_NONE = "none"


@transaction.atomic(durable=True)
def reinvestment_set(*, investor, asset: Asset, target: str, limit_price_minor: int | None = None):
    """Set, change or remove (`target` "none") the investor's reinvestment instruction for
    an asset they hold. The market target needs a limit price per fraction."""
    from .models import Holding, ReinvestmentInstruction

    if not (investor.is_authenticated and investor.is_active):
        raise PermissionDenied("Sign in to set a reinvestment instruction.")
    held = Holding.objects.filter(investor=investor, asset=asset).filter(Q(quantity__gt=0) | Q(pending_quantity__gt=0))
    if not held.exists():
        raise ValidationError("You can only reinvest distributions of an asset you hold.", code="not_held")
    if target == REINVEST_NONE:
        ReinvestmentInstruction.objects.filter(investor=investor, asset=asset).delete()
        return None
    if target not in ReinvestmentInstruction.Target.values:
        raise ValidationError({"target": ["Choose where to reinvest."]})
    if target == ReinvestmentInstruction.Target.MARKET:
        if isinstance(limit_price_minor, bool) or not isinstance(limit_price_minor, int) or limit_price_minor < 1:
            raise ValidationError({"limit_price": ["Give the most you would pay per fraction."]})
        if limit_price_minor > MAX_MINOR:
            raise ValidationError({"limit_price": ["The limit price is too large."]})
    else:
        limit_price_minor = None
    instruction, _ = ReinvestmentInstruction.objects.update_or_create(
        investor=investor, asset=asset, defaults={"target": target, "limit_price_minor": limit_price_minor}
    )
    return instruction
