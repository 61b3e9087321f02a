"""Payouts: the bank accounts investors withdraw to, and paying withdrawals by SEPA file
(docs/funding.md, "Payouts").

Payout accounts. An investor saves an IBAN (validated and normalised with schwifty) and
the account holder's name. The name is compared with the verified KYC legal name
(ignoring case, accents, punctuation, spacing and word order): when it differs, staff
review the account (four eyes: never their own). Every new account waits a cooling-off
period (settings.PAYOUT_ACCOUNT_COOLING_OFF_HOURS) and the investor gets a mail at once,
so somebody who took over a session cannot add their own account and withdraw to it
before the owner hears of it.

Which withdrawals are "approved" for a payout file: the flow has no separate approval
state, so a withdrawal is payable when it is still `requested`, names a payout account
that is active, and is in no batch. Exporting it into a batch is the staff decision
(permission marketplace.pay_withdrawals; an exporter's own withdrawals are left out).
Marking the batch sent pays every withdrawal in it through `services.withdrawal_mark_paid`,
the one place that posts a paid withdrawal to the ledger; cancelling the batch puts them
back in the queue. A withdrawal in an exported batch can be neither paid by hand nor
rejected until its batch is cancelled.

Currencies. A withdrawal in any currency names a usable payout account (an IBAN). EUR
withdrawals go to a SEPA-zone IBAN and are paid by pain.001 file; the other currencies
are paid by hand as before ("Pay or reject" in the back office, with the outgoing bank
reference) to the account the withdrawal names.

Lock order (marketplace/locks.py): PayoutBatch first (mark sent, cancel), then the
ledger accounts, then PayoutAccount (withdrawal_request, remove, review), then the
withdrawals, then the audit head."""

from __future__ import annotations

import hashlib
import re
import unicodedata
import uuid
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.urls import reverse
from django.utils import timezone
from schwifty import BIC, IBAN
from schwifty.exceptions import SchwiftyException
from sepaxml import SepaTransfer

from accounts.notifications import notify
from compliance.audit import audit_record
from compliance.models import KycApplication
from config.money import currency_clean, format_money

from . import services
from .locks import ledger_accounts_lock
from .models import LedgerAccount, PayoutAccount, PayoutBatch, Withdrawal

A = LedgerAccount.Kind
PS = PayoutAccount.Status
BS = PayoutBatch.Status
SEPA_CURRENCY = "EUR"
SEPA_SCHEMA = "pain.001.001.03"
# Longer input is refused before any parsing: an IBAN has at most 34 characters (plus
# the spaces of its printed form), a BIC 11, a name on a SEPA transfer 70.
_MAX_IBAN_INPUT = 64
_MAX_BIC_INPUT = 24
_HOLDER_MAX = 70
_LABEL_MAX = 60
_IBAN_SHAPE = re.compile(r"[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}")
_BIC_SHAPE = re.compile(r"[A-Z]{6}[A-Z0-9]{2}(?:[A-Z0-9]{3})?")
_SEPARATORS = re.compile(r"[\s-]+")
REVIEW_PERMISSION = "marketplace.review_payoutaccount"
PAY_PERMISSION = "marketplace.pay_withdrawals"


# -- validation ------------------------------------------------------------------------


def iban_clean(raw) -> IBAN:
    """A typed IBAN ('de89 3704 0044 0532 0130 00') as schwifty's IBAN, or a
    ValidationError. Only ASCII letters and digits (plus spaces or hyphens between
    groups): other scripts' digits, control characters and very long input are refused
    before schwifty sees them."""
    text = str(raw if raw is not None else "").strip()
    if not text:
        raise ValidationError("Enter the IBAN.", code="required")
    if len(text) > _MAX_IBAN_INPUT:
        raise ValidationError("That is too long for an IBAN (at most 34 letters and digits).", code="too_long")
    if not text.isascii() or not text.isprintable():
        raise ValidationError("An IBAN has only the letters A-Z and the digits 0-9.", code="characters")
    compact = _SEPARATORS.sub("", text).upper()
    if not _IBAN_SHAPE.fullmatch(compact):
        raise ValidationError(
            "This is not an IBAN: two letters, two check digits, then 11 to 30 letters and digits.", code="shape"
        )
    try:
        return IBAN(compact)
    except SchwiftyException as exc:
        message = {
            "InvalidChecksumDigits": "The IBAN's check digits are wrong: check it for a typo.",
            "InvalidBBANChecksum": "The IBAN's account number does not check out: check it for a typo.",
            "InvalidLength": f"An IBAN from {compact[:2]} has a different number of characters.",
            "InvalidCountryCode": f"{compact[:2]} is not a country that uses IBANs.",
        }.get(type(exc).__name__, "This IBAN is not valid: check it for a typo.")
        raise ValidationError(message, code="invalid_iban") from None


def bic_clean(raw, *, iban: IBAN) -> str:
    """The BIC as typed (validated) or, when left empty, the one schwifty knows for the
    IBAN's bank; empty when neither (SEPA transfers need only the IBAN)."""
    text = str(raw if raw is not None else "").strip()
    if not text:
        derived = iban.bic
        return str(derived.compact) if derived is not None else ""
    if len(text) > _MAX_BIC_INPUT or not text.isascii() or not text.isprintable():
        raise ValidationError("A BIC has 8 or 11 letters and digits.", code="invalid_bic")
    compact = _SEPARATORS.sub("", text).upper()
    if not _BIC_SHAPE.fullmatch(compact):
        raise ValidationError("A BIC has 8 or 11 letters and digits, e.g. COBADEFFXXX.", code="invalid_bic")
    try:
        bic = BIC(compact)
    except SchwiftyException:
        raise ValidationError("This BIC is not valid.", code="invalid_bic") from None
    if bic.country_code != iban.country_code and iban.country_code not in _SHARED_BIC_COUNTRIES.get(
        bic.country_code, ()
    ):
        raise ValidationError("The BIC is of a bank in another country than the IBAN.", code="bic_country")
    return str(bic.compact)


# Territories whose IBANs are served by banks with the BIC of another country.
_SHARED_BIC_COUNTRIES = {"FR": ("MC", "GP", "MQ", "GF", "RE", "YT", "PM", "BL", "MF", "NC", "PF", "WF")}


def _clean_text(raw, *, what: str, maximum: int, required: bool) -> str:
    text = " ".join(str(raw if raw is not None else "").split())
    if required and not text:
        raise ValidationError(f"Enter the {what}.", code="required")
    if len(text) > maximum:
        raise ValidationError(f"The {what} can have at most {maximum} characters.", code="too_long")
    if not text.isprintable():
        raise ValidationError(f"The {what} contains characters that cannot be printed.", code="characters")
    return text


def name_key(name: str) -> tuple[str, ...]:
    """A name as compared with the KYC name: accents, case, punctuation, spacing and the
    order of the words do not count ('Müller-Lüdenscheidt, Hans' == 'hans muller
    ludenscheidt')."""
    decomposed = unicodedata.normalize("NFKD", name or "")
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()
    words = re.sub(r"[\W_]+", " ", plain).split()
    return tuple(sorted(words))


def verified_legal_name(investor) -> str:
    """The legal name of the investor's latest approved KYC application ('' if none)."""
    app = (
        KycApplication.objects.filter(user=investor, status=KycApplication.Status.APPROVED)
        .order_by("-decided_at", "-pk")
        .first()
    )
    return app.legal_name if app is not None else ""


def mask_iban(iban: str) -> str:
    return f"{iban[:4]} … {iban[-4:]}" if len(iban) > 8 else iban


# -- reading -------------------------------------------------------------------------------


def payout_accounts_for(*, user) -> QuerySet[PayoutAccount]:
    """The investor's accounts, removed ones left out."""
    return PayoutAccount.objects.filter(investor=user).exclude(status=PS.REMOVED).order_by("-created_at", "-pk")


def usable_payout_accounts(*, user, at=None) -> QuerySet[PayoutAccount]:
    """Accounts a new withdrawal can go to: active and past the cooling-off period."""
    return PayoutAccount.objects.filter(
        investor=user, status=PS.ACTIVE, usable_from__lte=at or timezone.now()
    ).order_by("-created_at", "-pk")


def payout_account_get_for_user(*, public_id, user) -> PayoutAccount:
    """The investor's own account; anybody else's is a 404, never a 403."""
    from django.http import Http404

    account = PayoutAccount.objects.filter(public_id=public_id, investor=user).first()
    if account is None:
        raise Http404("No such payout account.")
    return account


def payout_account_refusal(account: PayoutAccount, *, currency: str, at=None) -> str:
    """Why a withdrawal in `currency` cannot go to this account now ('' when it can)."""
    at = at or timezone.now()
    if account.status == PS.REVIEW:
        return "This payout account is waiting for our review; you can use it once it is cleared."
    if account.status != PS.ACTIVE:
        return f"This payout account is {account.get_status_display().lower()}; choose another one."
    if account.usable_from > at:
        return (
            "This payout account is new: for your security it can be used from "
            f"{timezone.localtime(account.usable_from):%d %b %Y %H:%M}."
        )
    if currency == SEPA_CURRENCY and not IBAN(account.iban).in_sepa_zone:
        return "Euro withdrawals are paid by SEPA transfer: choose an account in the SEPA zone."
    return ""


def payout_account_for_withdrawal(*, investor, payout_account, currency: str) -> PayoutAccount:
    """withdrawal_request's check, inside its transaction after the ledger locks: the
    investor's own account, locked (NO KEY UPDATE, so removing it waits for the request
    and then sees the withdrawal), usable now for `currency`."""
    if payout_account is None or payout_account == "":
        raise ValidationError(
            "Choose the bank account to pay the withdrawal to (add one under Payout accounts).",
            code="payout_account_required",
        )
    public_id = payout_account.public_id if isinstance(payout_account, PayoutAccount) else payout_account
    try:
        public_id = uuid.UUID(str(public_id))
    except ValueError:
        raise ValidationError("Choose one of your payout accounts.", code="payout_account_unknown") from None
    account = (
        PayoutAccount.objects.select_for_update(no_key=True).filter(public_id=public_id, investor=investor).first()
    )
    if account is None:
        raise ValidationError("Choose one of your payout accounts.", code="payout_account_unknown")
    refusal = payout_account_refusal(account, currency=currency)
    if refusal:
        raise ValidationError(refusal, code="payout_account_unusable")
    return account


# -- investors: add and remove ------------------------------------------------------------------


def _account_snapshot(account: PayoutAccount) -> dict:
    return {
        "iban": mask_iban(account.iban),
        "bic": account.bic,
        "holder_name": account.holder_name,
        "label": account.label,
        "status": account.status,
        "name_matches_kyc": account.name_matches_kyc,
        "usable_from": account.usable_from,
    }


@transaction.atomic(durable=True)
def payout_account_add(*, investor, holder_name, iban, bic="", label="") -> PayoutAccount:
    """Save a bank account for withdrawals. Usable after the cooling-off period, and only
    after staff review when the holder's name differs from the verified KYC name."""
    errors: dict[str, list[ValidationError]] = {}
    parsed: IBAN | None = None
    cleaned: dict[str, str] = {}
    try:
        parsed = iban_clean(iban)
    except ValidationError as exc:
        errors["iban"] = exc.error_list
    for field, what, maximum, required in (
        ("holder_name", "account holder's name", _HOLDER_MAX, True),
        ("label", "label", _LABEL_MAX, False),
    ):
        try:
            cleaned[field] = _clean_text(
                holder_name if field == "holder_name" else label, what=what, maximum=maximum, required=required
            )
        except ValidationError as exc:
            errors[field] = exc.error_list
    if parsed is not None:
        try:
            cleaned["bic"] = bic_clean(bic, iban=parsed)
        except ValidationError as exc:
            errors["bic"] = exc.error_list
    if errors:
        raise ValidationError(errors)
    assert parsed is not None
    compact = str(parsed.compact)
    if PayoutAccount.objects.filter(investor=investor, iban=compact).exclude(status=PS.REMOVED).exists():
        raise ValidationError({"iban": "You already saved this account."}, code="duplicate")

    legal_name = verified_legal_name(investor)
    matches = bool(legal_name) and name_key(cleaned["holder_name"]) == name_key(legal_name)
    now = timezone.now()
    account = PayoutAccount(
        investor=investor,
        label=cleaned["label"],
        holder_name=cleaned["holder_name"],
        iban=compact,
        bic=cleaned["bic"],
        status=PS.ACTIVE if matches else PS.REVIEW,
        name_matches_kyc=matches,
        usable_from=now + timedelta(hours=settings.PAYOUT_ACCOUNT_COOLING_OFF_HOURS),
        created_at=now,
    )
    try:
        with transaction.atomic():
            account.save()
    except IntegrityError:
        raise ValidationError({"iban": "You already saved this account."}, code="duplicate") from None
    audit_record(actor=investor, action="payout_account.added", target=account, after=_account_snapshot(account))
    when = f"{timezone.localtime(account.usable_from):%d %b %Y %H:%M %Z}"
    review = (
        ""
        if matches
        else "\n\nThe account holder's name differs from the name you verified with us, so our team will "
        "review the account before it can be used."
    )
    notify(
        user=investor,
        subject="A payout account was added to your account",
        body=f"The bank account {mask_iban(compact)} in the name of {account.holder_name} was added for "
        f"withdrawals. For your security it can be used from {when}.{review}\n\n"
        "If this wasn't you, remove the account at once, change your password and contact us: "
        "until then no withdrawal can go to it.",
        path=reverse("marketplace:payout_accounts"),
    )
    return account


@transaction.atomic(durable=True)
def payout_account_remove(*, investor, account: PayoutAccount) -> PayoutAccount:
    """The investor removes one of their accounts; not while a withdrawal waiting to be
    paid goes to it."""
    locked = PayoutAccount.objects.select_for_update(no_key=True).filter(pk=account.pk, investor=investor).first()
    if locked is None:
        raise PermissionDenied("This is not your payout account.")
    account = locked
    if account.status == PS.REMOVED:
        return account
    if account.withdrawals.filter(status=Withdrawal.Status.REQUESTED).exists():
        raise ValidationError(
            "A withdrawal waiting to be paid goes to this account: remove it once that is paid.", code="in_use"
        )
    before = _account_snapshot(account)
    account.status = PS.REMOVED
    account.save(update_fields=["status"])
    audit_record(
        actor=investor, action="payout_account.removed", target=account, before=before, after={"status": PS.REMOVED}
    )
    notify(
        user=investor,
        subject="A payout account was removed",
        body=f"The bank account {mask_iban(account.iban)} was removed from your payout accounts. "
        "If this wasn't you, change your password and contact us.",
        path=reverse("marketplace:payout_accounts"),
    )
    return account


# -- staff: review -----------------------------------------------------------------------------


@transaction.atomic(durable=True)
def payout_account_review(*, account: PayoutAccount, actor, clear: bool, reason: str = "") -> PayoutAccount:
    """Staff decide an account whose holder's name differs from the KYC name: clear it
    (ACTIVE, usable once its cooling-off period ends) or reject it (a reason the investor
    reads is required)."""
    services._require_staff(actor, REVIEW_PERMISSION, not_user=account.investor)
    reason = " ".join((reason or "").split())[:500]
    if not clear and not reason:
        raise ValidationError({"reason": "Tell the investor why the account is rejected."})
    account = PayoutAccount.objects.select_for_update(no_key=True).select_related("investor").get(pk=account.pk)
    if account.status != PS.REVIEW:
        raise ValidationError(f"This account is not waiting for review ({account.get_status_display().lower()}).")
    before = _account_snapshot(account)
    account.status = PS.ACTIVE if clear else PS.REJECTED
    account.reviewed_by, account.reviewed_at, account.review_reason = actor, timezone.now(), reason
    account.save(update_fields=["status", "reviewed_by", "reviewed_at", "review_reason"])
    audit_record(
        actor=actor,
        action="payout_account.cleared" if clear else "payout_account.rejected",
        target=account,
        before=before,
        after={"status": account.status},
        reason=reason,
    )
    if clear:
        when = f"{timezone.localtime(max(account.usable_from, timezone.now())):%d %b %Y %H:%M %Z}"
        subject, body = (
            "Payout account cleared",
            f"We checked the bank account {mask_iban(account.iban)}: you can withdraw to it from {when}.",
        )
    else:
        subject, body = (
            "Payout account rejected",
            f"We cannot pay withdrawals to the bank account {mask_iban(account.iban)}: {reason}",
        )
    notify(user=account.investor, subject=subject, body=body, path=reverse("marketplace:payout_accounts"))
    return account


# -- staff: payout batches (SEPA pain.001) ------------------------------------------------------


def debtor_account() -> dict[str, str]:
    """The platform's EUR account that pays withdrawals: PLATFORM_BANK_ACCOUNTS["EUR"]
    (the deposit instructions' account) when configured, else PAYOUT_DEBTOR_ACCOUNT."""
    configured = getattr(settings, "PLATFORM_BANK_ACCOUNTS", {}) or {}
    entry = configured.get(SEPA_CURRENCY) or settings.PAYOUT_DEBTOR_ACCOUNT
    holder = entry.get("holder") or entry.get("account_holder") or entry.get("name") or ""
    iban = str(iban_clean(entry.get("iban")).compact)
    bic = str(entry.get("bic") or "").replace(" ", "").upper()
    if not holder:
        raise ValidationError("The platform's EUR bank account has no holder name configured.")
    return {"name": holder, "IBAN": iban, "BIC": bic}


def payable_withdrawals(*, currency: str) -> QuerySet[Withdrawal]:
    """The queue of a payout file: requested, naming an active account, in no batch."""
    return Withdrawal.objects.filter(
        status=Withdrawal.Status.REQUESTED,
        currency=currency,
        batch__isnull=True,
        payout_account__isnull=False,
        payout_account__status=PS.ACTIVE,
    )


def end_to_end_id(withdrawal: Withdrawal) -> str:
    return withdrawal.public_id.hex  # 32 characters; SEPA allows 35


def _pain001(*, withdrawals: list[Withdrawal], debtor: dict[str, str]) -> tuple[str, bytes]:
    """The pain.001.001.03 file (validated against sepaxml's bundled XSD) and its MsgId."""
    sepa = SepaTransfer(
        {"name": debtor["name"], "IBAN": debtor["IBAN"], "BIC": debtor["BIC"], "batch": True, "currency": "EUR"},
        schema=SEPA_SCHEMA,
        clean=True,
    )
    if not debtor["BIC"]:
        del sepa._config["BIC"]
    today = timezone.localdate()
    for w in withdrawals:
        account = w.payout_account
        assert account is not None
        payment = {
            "name": account.holder_name,
            "IBAN": account.iban,
            # Integer minor units: sepaxml takes euro cents as an int and writes 1234 as 12.34.
            "amount": int(w.amount_minor),
            "execution_date": today,
            "description": f"RWA Marketplace withdrawal {w.public_id.hex[:8]}",
            "endtoend_id": end_to_end_id(w),
        }
        if account.bic:
            payment["BIC"] = account.bic
        sepa.add_payment(payment)
    return sepa.msg_id, sepa.export(validate=True)


@transaction.atomic(durable=True)
def payout_batch_export(*, currency: str, actor, withdrawal_ids=None) -> tuple[PayoutBatch, bytes]:
    """Take the payable withdrawals (all of them, or those of `withdrawal_ids`) into a
    new batch and return it with its pain.001 file. The withdrawals are locked, in pk
    order, and re-checked under the lock: a concurrent export waits and then finds them
    taken, so no withdrawal is ever in two files. The staff member's own withdrawals are
    left out (four eyes)."""
    services._require_staff(actor, PAY_PERMISSION)
    currency = currency_clean(currency)
    if currency != SEPA_CURRENCY:
        raise ValidationError(
            f"SEPA payout files are in euro only; pay {currency} withdrawals by hand (Pay or reject).",
            code="currency",
        )
    debtor = debtor_account()
    queue = payable_withdrawals(currency=currency).exclude(investor=actor)
    if withdrawal_ids is not None:
        queue = queue.filter(pk__in=list(withdrawal_ids))
    locked = list(queue.select_for_update(of=("self",)).select_related("payout_account").order_by("pk"))
    # The rows as they are now that we hold them (READ COMMITTED re-checks the filter on
    # rows another transaction changed while we waited; this is the belt to those braces).
    withdrawals = [
        w
        for w in locked
        if w.status == Withdrawal.Status.REQUESTED
        and w.batch_id is None
        and w.payout_account is not None
        and w.payout_account.status == PS.ACTIVE
    ]
    if not withdrawals:
        raise ValidationError("No withdrawals are waiting for a payout file.", code="nothing_to_pay")
    message_id, xml = _pain001(withdrawals=withdrawals, debtor=debtor)
    total = sum(w.amount_minor for w in withdrawals)
    batch = PayoutBatch.objects.create(
        currency=currency,
        message_id=message_id,
        total_minor=total,
        count=len(withdrawals),
        file_sha256=hashlib.sha256(xml).hexdigest(),
        created_by=actor,
    )
    Withdrawal.objects.filter(pk__in=[w.pk for w in withdrawals]).update(batch=batch)
    audit_record(
        actor=actor,
        action="payout.batch_exported",
        target=batch,
        after={
            "message_id": message_id,
            "currency": currency,
            "count": len(withdrawals),
            "total_minor": total,
            "file_sha256": batch.file_sha256,
            "withdrawals": [w.public_id.hex for w in withdrawals],
        },
    )
    return batch, xml


def _batch_lock(batch: PayoutBatch) -> PayoutBatch:
    return PayoutBatch.objects.select_for_update(no_key=True).get(pk=batch.pk)


@transaction.atomic(durable=True)
def payout_batch_mark_sent(*, batch: PayoutBatch, actor) -> PayoutBatch:
    """The file went to the bank: every withdrawal in the batch becomes paid, through
    services.withdrawal_mark_paid (ledger, audit, mail). Exactly once: the batch row is
    locked first, and a batch that is no longer `exported` is returned unchanged."""
    services._require_staff(actor, PAY_PERMISSION)
    batch = _batch_lock(batch)
    if batch.status == BS.SENT:
        return batch
    if batch.status != BS.EXPORTED:
        raise ValidationError(f"This batch is {batch.get_status_display().lower()}.")
    members = list(Withdrawal.objects.filter(batch=batch).select_related("investor").order_by("pk"))
    for w in members:
        if w.investor_id == actor.pk:
            raise PermissionDenied("Four eyes: this batch pays a withdrawal of yours; another staff member marks it.")
    specs: list[tuple[str, object, str]] = [(A.BANK, None, batch.currency)]
    specs += [(A.INVESTOR_HELD, w.investor, batch.currency) for w in members]
    locked = ledger_accounts_lock(specs=specs)  # type: ignore[arg-type]
    bank, held_by_user = locked[0], {acc.user_id: acc for acc in locked[1:]}
    withdrawals = list(Withdrawal.objects.select_for_update().filter(batch=batch).order_by("pk"))
    if [w.pk for w in withdrawals] != [w.pk for w in members]:
        raise ValidationError("The batch changed while it was being marked; try again.")
    for w in withdrawals:
        if w.status != Withdrawal.Status.REQUESTED:
            raise ValidationError(f"Withdrawal {w.public_id.hex[:8]} is already {w.get_status_display().lower()}.")
    for w in withdrawals:
        services.withdrawal_mark_paid(
            withdrawal=w,
            held=held_by_user[w.investor_id],
            bank=bank,
            actor=actor,
            bank_reference=f"SEPA {batch.message_id} {end_to_end_id(w)}",
        )
    batch.status, batch.sent_by, batch.sent_at = BS.SENT, actor, timezone.now()
    batch.save(update_fields=["status", "sent_by", "sent_at"])
    audit_record(
        actor=actor,
        action="payout.batch_sent",
        target=batch,
        before={"status": BS.EXPORTED},
        after={"status": BS.SENT, "count": batch.count, "total_minor": batch.total_minor},
    )
    return batch


@transaction.atomic(durable=True)
def payout_batch_cancel(*, batch: PayoutBatch, actor, reason: str = "") -> PayoutBatch:
    """The file was not (and will not be) sent: its withdrawals go back to the queue."""
    services._require_staff(actor, PAY_PERMISSION)
    batch = _batch_lock(batch)
    if batch.status == BS.CANCELLED:
        return batch
    if batch.status != BS.EXPORTED:
        raise ValidationError("A batch sent to the bank cannot be cancelled; its withdrawals are paid.")
    withdrawals = list(Withdrawal.objects.select_for_update().filter(batch=batch).order_by("pk"))
    Withdrawal.objects.filter(pk__in=[w.pk for w in withdrawals], status=Withdrawal.Status.REQUESTED).update(batch=None)
    batch.status = BS.CANCELLED
    batch.save(update_fields=["status"])
    audit_record(
        actor=actor,
        action="payout.batch_cancelled",
        target=batch,
        before={"status": BS.EXPORTED},
        after={"status": BS.CANCELLED, "withdrawals": [w.public_id.hex for w in withdrawals]},
        reason=" ".join((reason or "").split())[:500],
    )
    return batch


def batch_summary(batch: PayoutBatch) -> str:
    return f"{batch.count} withdrawal(s), {format_money(batch.total_minor, batch.currency)}"
