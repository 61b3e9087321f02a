"""Payout accounts and SEPA payout batches (marketplace/payouts.py, docs/funding.md)."""

import os
import xml.etree.ElementTree as ET
from datetime import timedelta

import pytest
import sepaxml
import time_machine
import xmlschema
from django.contrib.auth.models import Permission
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management import call_command
from django.utils import timezone

from accounts.tests.factories import UserFactory
from compliance.models import AuditEntry
from marketplace import payouts
from marketplace.ledger_proofs import ledger_verify
from marketplace.models import JournalEntry, LedgerAccount, PayoutAccount, PayoutBatch, Withdrawal
from marketplace.services import withdrawal_approve, withdrawal_reject, withdrawal_request

from .factories import StaffFactory, usable_payout_account, verified_investor

pytestmark = pytest.mark.django_db
PS = PayoutAccount.Status
NS = {"p": "urn:iso:std:iso:20022:tech:xsd:pain.001.001.03"}
GOOD_IBAN = "DE89370400440532013000"
OTHER_IBAN = "NL91ABNA0417164300"


def _legal_name(user) -> str:
    return payouts.verified_legal_name(user)


def _add(investor, **kwargs):
    fields = {"holder_name": _legal_name(investor), "iban": GOOD_IBAN, "bic": "", "label": ""}
    fields.update(kwargs)
    return payouts.payout_account_add(investor=investor, **fields)


def _past_cooling_off():
    return time_machine.travel(
        timezone.now() + timedelta(hours=payouts.settings.PAYOUT_ACCOUNT_COOLING_OFF_HOURS, minutes=1), tick=False
    )


# -- IBAN and BIC -------------------------------------------------------------------------


def test_a_typed_iban_is_normalised_and_the_bic_derived():
    iban = payouts.iban_clean("  de89 3704 0044 0532 0130 00 ")
    assert str(iban.compact) == GOOD_IBAN
    assert payouts.bic_clean("", iban=iban) == "COBADEFFXXX"
    assert payouts.bic_clean("coba de ff xxx", iban=iban) == "COBADEFFXXX"


@pytest.mark.parametrize(
    "raw, message",
    [
        ("DE88370400440532013000", "check digits"),  # checksum off by one
        ("DE8937040044053201300", "different number"),  # one digit short
        ("DE893704004405320130000", "different number"),  # one digit too many
        ("X" * 10_000, "too long"),
        ("DE89\x00370400440532013000", "only the letters"),
        ("DE89370400440532013000\x00", "only the letters"),
        ("DE٨٩370400440532013000", "only the letters"),  # Arabic-Indic digits
        ("DE８９370400440532013000", "only the letters"),  # full-width digits
        ("ＤＥ89370400440532013000", "only the letters"),
        ("", "Enter the IBAN"),
        ("<script>alert(1)</script>", "not an IBAN"),
        ("ZZ89370400440532013000", "not a country"),
    ],
)
def test_bad_and_hostile_ibans_are_refused_with_a_clear_message(raw, message):
    with pytest.raises(ValidationError, match=message):
        payouts.iban_clean(raw)


def test_adding_a_bad_iban_stores_nothing_and_sends_no_mail(django_capture_on_commit_callbacks):
    investor = verified_investor()
    with django_capture_on_commit_callbacks(execute=True):
        with pytest.raises(ValidationError) as exc:
            _add(investor, iban="DE88370400440532013000", bic="NOTABIC!")
    assert "iban" in exc.value.message_dict
    assert not PayoutAccount.objects.exists() and not mail.outbox


def test_a_bic_of_another_country_is_refused():
    with pytest.raises(ValidationError, match="another country"):
        payouts.bic_clean("ABNANL2A", iban=payouts.iban_clean(GOOD_IBAN))


# -- adding, name check, cooling-off ----------------------------------------------------------


def test_name_key_ignores_case_accents_spacing_punctuation_and_word_order():
    assert payouts.name_key("Müller-Lüdenscheidt,  Hans") == payouts.name_key("hans MULLER ludenscheidt")
    assert payouts.name_key("José  García") == payouts.name_key("garcia jose")
    assert payouts.name_key("Anna Smith") != payouts.name_key("Anna Smyth")
    assert payouts.name_key("Anna Smith") != payouts.name_key("Anna Smith Jones")


def test_an_account_in_the_verified_name_is_active_after_cooling_off_and_the_investor_is_mailed(
    django_capture_on_commit_callbacks,
):
    investor = verified_investor()
    legal = _legal_name(investor)
    reordered = " ".join(reversed(legal.upper().split()))
    before = timezone.now()
    with django_capture_on_commit_callbacks(execute=True):
        account = _add(investor, holder_name=f"  {reordered} ", iban="de89 3704 0044 0532 0130 00")
    assert account.status == PS.ACTIVE and account.name_matches_kyc
    assert account.iban == GOOD_IBAN and account.bic == "COBADEFFXXX"
    hours = payouts.settings.PAYOUT_ACCOUNT_COOLING_OFF_HOURS
    assert before + timedelta(hours=hours) <= account.usable_from <= timezone.now() + timedelta(hours=hours)
    assert [m.to for m in mail.outbox] == [[investor.email]]
    body = mail.outbox[0].body
    assert "If this wasn't you" in body and "DE89 … 3000" in body and GOOD_IBAN not in body
    assert AuditEntry.objects.filter(action="payout_account.added", actor_id=investor.pk).exists()
    assert not payouts.usable_payout_accounts(user=investor).exists()


def test_an_account_in_another_name_waits_for_review():
    investor = verified_investor()
    account = _add(investor, holder_name="Somebody Else Entirely")
    assert account.status == PS.REVIEW and not account.name_matches_kyc


def test_without_approved_kyc_every_account_is_reviewed():
    investor = UserFactory(full_name="Ann Lee")
    assert _add(investor, holder_name="Ann Lee").status == PS.REVIEW


def test_the_same_iban_twice_is_refused_but_can_be_added_again_after_removal():
    investor = verified_investor()
    account = _add(investor)
    with pytest.raises(ValidationError, match="already saved"):
        _add(investor, iban=GOOD_IBAN.lower())
    payouts.payout_account_remove(investor=investor, account=account)
    assert _add(investor).status == PS.ACTIVE


def test_no_withdrawal_to_an_account_before_its_cooling_off_ends_then_it_works(fund):
    investor = verified_investor()
    fund(investor, 10_000)
    account = _add(investor)
    with pytest.raises(ValidationError, match="can be used from"):
        withdrawal_request(investor=investor, amount_minor=1_000, currency="EUR", payout_account=account)
    assert not Withdrawal.objects.exists()
    with _past_cooling_off():
        assert list(payouts.usable_payout_accounts(user=investor)) == [account]
        withdrawal = withdrawal_request(
            investor=investor, amount_minor=1_000, currency="EUR", payout_account=account.public_id
        )
    assert withdrawal.payout_account == account


def test_a_withdrawal_needs_an_account_of_the_investor_that_is_usable(fund):
    investor, other = verified_investor(), verified_investor()
    fund(investor, 10_000)
    with pytest.raises(ValidationError, match="Choose the bank account"):
        withdrawal_request(investor=investor, amount_minor=1_000, currency="EUR")
    with pytest.raises(ValidationError, match="Choose one of your payout accounts"):
        withdrawal_request(
            investor=investor, amount_minor=1_000, currency="EUR", payout_account=usable_payout_account(other)
        )
    with pytest.raises(ValidationError, match="Choose one of your payout accounts"):
        withdrawal_request(investor=investor, amount_minor=1_000, currency="EUR", payout_account="not-a-uuid")
    review = usable_payout_account(investor, status=PS.REVIEW)
    with pytest.raises(ValidationError, match="waiting for our review"):
        withdrawal_request(investor=investor, amount_minor=1_000, currency="EUR", payout_account=review)
    outside = usable_payout_account(investor, iban="TR330006100519786457841326", bic="")
    with pytest.raises(ValidationError, match="SEPA zone"):
        withdrawal_request(investor=investor, amount_minor=1_000, currency="EUR", payout_account=outside)
    assert not Withdrawal.objects.exists()


def test_remove_is_refused_while_a_requested_withdrawal_uses_the_account(fund, staff):
    investor = verified_investor()
    fund(investor, 10_000)
    account = usable_payout_account(investor)
    withdrawal = withdrawal_request(investor=investor, amount_minor=1_000, currency="EUR", payout_account=account)
    with pytest.raises(ValidationError, match="waiting to be paid"):
        payouts.payout_account_remove(investor=investor, account=account)
    withdrawal_approve(withdrawal=withdrawal, actor=staff, bank_reference="OUT-1")
    with pytest.raises(PermissionDenied):
        payouts.payout_account_remove(investor=verified_investor(), account=account)
    assert payouts.payout_account_remove(investor=investor, account=account).status == PS.REMOVED
    assert AuditEntry.objects.filter(action="payout_account.removed").exists()
    with pytest.raises(ValidationError, match="removed"):
        withdrawal_request(investor=investor, amount_minor=1_000, currency="EUR", payout_account=account)


# -- staff review ------------------------------------------------------------------------------


def _staff_with(*codenames):
    user = StaffFactory(is_superuser=False, roles=())
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="marketplace", codename__in=codenames))
    return type(user).objects.get(pk=user.pk)  # fresh permission cache


def test_staff_clear_or_reject_a_flagged_account_audited_and_mailed(django_capture_on_commit_callbacks):
    reviewer = _staff_with("review_payoutaccount")
    investor = verified_investor()
    cleared = _add(investor, holder_name="Joint Account Holders")
    rejected = _add(investor, holder_name="Mallory", iban=OTHER_IBAN)
    with django_capture_on_commit_callbacks(execute=True):
        payouts.payout_account_review(account=cleared, actor=reviewer, clear=True)
    cleared.refresh_from_db()
    assert cleared.status == PS.ACTIVE and cleared.reviewed_by == reviewer and "withdraw to it" in mail.outbox[-1].body
    with pytest.raises(ValidationError, match="why"):
        payouts.payout_account_review(account=rejected, actor=reviewer, clear=False, reason="  ")
    with django_capture_on_commit_callbacks(execute=True):
        payouts.payout_account_review(account=rejected, actor=reviewer, clear=False, reason="Not your account")
    rejected.refresh_from_db()
    assert rejected.status == PS.REJECTED and "Not your account" in mail.outbox[-1].body
    actions = set(AuditEntry.objects.filter(actor_id=reviewer.pk).values_list("action", flat=True))
    assert actions == {"payout_account.cleared", "payout_account.rejected"}
    with pytest.raises(ValidationError, match="not waiting for review"):
        payouts.payout_account_review(account=cleared, actor=reviewer, clear=True)
    with _past_cooling_off():
        assert list(payouts.usable_payout_accounts(user=investor)) == [cleared]


def test_review_needs_the_permission_and_never_of_ones_own_account():
    investor = verified_investor()
    account = _add(investor, holder_name="Other Name")
    for actor in (_staff_with("view_payoutaccount"), investor, UserFactory(is_staff=True)):
        with pytest.raises(PermissionDenied):
            payouts.payout_account_review(account=account, actor=actor, clear=True)
    reviewer = _staff_with("review_payoutaccount")
    own = _add(reviewer, holder_name="Not Me")
    with pytest.raises(PermissionDenied, match="Four eyes"):
        payouts.payout_account_review(account=own, actor=reviewer, clear=True)
    account.refresh_from_db()
    assert account.status == PS.REVIEW


# -- payout batches ----------------------------------------------------------------------------


@pytest.fixture
def payer(db):
    return _staff_with("pay_withdrawals", "view_payoutbatch")


@pytest.fixture
def queue(fund):
    """Three requested EUR withdrawals of two investors, each to a usable account."""
    first, second = verified_investor(), verified_investor()
    fund(first, 100_000)
    fund(second, 100_000)
    a1 = usable_payout_account(first, iban=GOOD_IBAN, bic="COBADEFFXXX")
    a2 = usable_payout_account(second, iban=OTHER_IBAN, bic="", holder_name="Zoë Ångström-Nuñez")
    return [
        withdrawal_request(investor=first, amount_minor=12_345, currency="EUR", payout_account=a1),
        withdrawal_request(investor=second, amount_minor=1, currency="EUR", payout_account=a2),
        withdrawal_request(investor=first, amount_minor=50_000_00 // 100, currency="EUR", payout_account=a1),
    ]


def _schema():
    return xmlschema.XMLSchema(os.path.join(os.path.dirname(sepaxml.__file__), "schemas", f"{payouts.SEPA_SCHEMA}.xsd"))


def _transactions(xml: bytes):
    root = ET.fromstring(xml)
    return [
        {
            "amount": tx.findtext("p:Amt/p:InstdAmt", namespaces=NS),
            "currency": tx.find("p:Amt/p:InstdAmt[@Ccy]", NS).get("Ccy"),  # type: ignore[union-attr]
            "iban": tx.findtext("p:CdtrAcct/p:Id/p:IBAN", namespaces=NS),
            "e2e": tx.findtext("p:PmtId/p:EndToEndId", namespaces=NS),
        }
        for tx in root.iterfind(".//p:CdtTrfTxInf", NS)
    ]


def test_the_payout_file_is_valid_pain001_with_exactly_the_batch_amounts_and_ibans(queue, payer):
    batch, xml = payouts.payout_batch_export(currency="EUR", actor=payer)
    _schema().validate(xml.decode())  # raises on any schema violation
    assert batch.count == 3 and batch.total_minor == 12_345 + 1 + 50_000 and batch.status == PayoutBatch.Status.EXPORTED
    txs = sorted(_transactions(xml), key=lambda t: t["e2e"])
    expected = sorted(
        (
            {
                "amount": f"{w.amount_minor // 100}.{w.amount_minor % 100:02d}",
                "currency": "EUR",
                "iban": w.payout_account.iban,
                "e2e": w.public_id.hex,
            }
            for w in queue
        ),
        key=lambda t: t["e2e"],
    )
    assert txs == expected
    assert {t["amount"] for t in txs} == {"123.45", "0.01", "500.00"}
    root = ET.fromstring(xml)
    assert root.find(".//p:GrpHdr/p:MsgId", NS).text == batch.message_id
    assert root.find(".//p:GrpHdr/p:CtrlSum", NS).text == "623.46"
    assert root.find(".//p:GrpHdr/p:NbOfTxs", NS).text == "3"
    debtor = payouts.debtor_account()
    assert root.find(".//p:DbtrAcct/p:Id/p:IBAN", NS).text == debtor["IBAN"]
    assert set(Withdrawal.objects.values_list("batch_id", flat=True)) == {batch.pk}
    assert AuditEntry.objects.filter(action="payout.batch_exported", actor_id=payer.pk).exists()
    with pytest.raises(ValidationError, match="No withdrawals"):
        payouts.payout_batch_export(currency="EUR", actor=payer)


def test_the_schema_check_is_real(queue, payer):
    """The validation the export relies on refuses a file with a broken amount."""
    _, xml = payouts.payout_batch_export(currency="EUR", actor=payer)
    broken = xml.replace(b'<InstdAmt Ccy="EUR">0.01</InstdAmt>', b'<InstdAmt Ccy="EUR">-0.01</InstdAmt>')
    assert broken != xml
    with pytest.raises(xmlschema.XMLSchemaValidationError):
        _schema().validate(broken.decode())


def test_export_takes_the_named_withdrawals_and_leaves_out_others_and_the_exporters_own(queue, payer, fund):
    fund(payer, 10_000)
    own = withdrawal_request(
        investor=payer, amount_minor=100, currency="EUR", payout_account=usable_payout_account(payer)
    )
    legacy = Withdrawal.objects.create(investor=queue[0].investor, amount_minor=5, currency="EUR")
    batch, xml = payouts.payout_batch_export(currency="EUR", actor=payer, withdrawal_ids=[queue[1].pk, own.pk])
    assert list(batch.withdrawals.all()) == [queue[1]] and len(_transactions(xml)) == 1
    batch2, _ = payouts.payout_batch_export(currency="EUR", actor=payer)
    assert set(batch2.withdrawals.all()) == {queue[0], queue[2]}
    own.refresh_from_db()
    legacy.refresh_from_db()
    assert own.batch is None and legacy.batch is None


def test_only_euro_goes_into_a_sepa_file(queue, payer):
    with pytest.raises(ValidationError, match="euro only"):
        payouts.payout_batch_export(currency="USD", actor=payer)
    with pytest.raises(ValidationError, match="We settle in"):
        payouts.payout_batch_export(currency="XXX", actor=payer)


def test_mark_sent_pays_every_withdrawal_exactly_once(queue, payer, django_capture_on_commit_callbacks):
    batch, _ = payouts.payout_batch_export(currency="EUR", actor=payer)
    bank_before = LedgerAccount.objects.get(kind=LedgerAccount.Kind.BANK, currency="EUR").balance
    with django_capture_on_commit_callbacks(execute=True):
        payouts.payout_batch_mark_sent(batch=batch, actor=payer)
    assert set(Withdrawal.objects.values_list("status", flat=True)) == {Withdrawal.Status.PAID}
    assert JournalEntry.objects.filter(kind=JournalEntry.Kind.WITHDRAWAL_PAID).count() == 3
    bank_after = LedgerAccount.objects.get(kind=LedgerAccount.Kind.BANK, currency="EUR").balance
    assert bank_after - bank_before == 62_346
    for w in queue:
        assert LedgerAccount.objects.get(user=w.investor, kind=LedgerAccount.Kind.INVESTOR_HELD).balance == 0
    assert sorted(len(m.to) for m in mail.outbox) == [1, 1, 1]
    assert all("paid" in m.subject for m in mail.outbox)
    assert Withdrawal.objects.get(pk=queue[0].pk).bank_reference == f"SEPA {batch.message_id} {queue[0].public_id.hex}"
    batch.refresh_from_db()
    assert batch.status == PayoutBatch.Status.SENT and batch.sent_by == payer
    assert AuditEntry.objects.filter(action="cash.withdrawal_paid").count() == 3
    assert AuditEntry.objects.filter(action="payout.batch_sent").count() == 1
    # A second call (a double click, a retry) changes nothing.
    audit_count, entries = AuditEntry.objects.count(), JournalEntry.objects.count()
    payouts.payout_batch_mark_sent(batch=batch, actor=payer)
    assert (AuditEntry.objects.count(), JournalEntry.objects.count()) == (audit_count, entries)
    assert ledger_verify().ok
    call_command("ledger_check")  # exits non-zero on any inconsistency
    with pytest.raises(ValidationError, match="cannot be cancelled"):
        payouts.payout_batch_cancel(batch=batch, actor=payer)


def test_a_withdrawal_in_an_exported_batch_is_neither_paid_by_hand_nor_rejected(queue, payer, staff):
    payouts.payout_batch_export(currency="EUR", actor=payer)
    with pytest.raises(ValidationError, match="payout file"):
        withdrawal_approve(withdrawal=queue[0], actor=staff, bank_reference="OUT-1")
    with pytest.raises(ValidationError, match="payout file"):
        withdrawal_reject(withdrawal=queue[0], actor=staff, reason="no")
    assert not JournalEntry.objects.filter(kind=JournalEntry.Kind.WITHDRAWAL_PAID).exists()


def test_cancel_returns_the_withdrawals_to_the_queue(queue, payer, staff):
    batch, _ = payouts.payout_batch_export(currency="EUR", actor=payer)
    payouts.payout_batch_cancel(batch=batch, actor=payer, reason="wrong date")
    batch.refresh_from_db()
    assert batch.status == PayoutBatch.Status.CANCELLED
    assert set(Withdrawal.objects.values_list("batch_id", "status")) == {(None, Withdrawal.Status.REQUESTED)}
    assert AuditEntry.objects.filter(action="payout.batch_cancelled", reason="wrong date").exists()
    with pytest.raises(ValidationError, match="cancelled"):
        payouts.payout_batch_mark_sent(batch=batch, actor=payer)
    assert not JournalEntry.objects.filter(kind=JournalEntry.Kind.WITHDRAWAL_PAID).exists()
    payouts.payout_batch_cancel(batch=batch, actor=payer)  # again: no-op
    batch2, _ = payouts.payout_batch_export(currency="EUR", actor=payer)
    assert batch2.count == 3 and batch2.message_id != batch.message_id
    # Once its batch is cancelled, a withdrawal can be decided by hand again.
    payouts.payout_batch_cancel(batch=batch2, actor=payer)
    withdrawal_reject(withdrawal=queue[1], actor=staff, reason="Closed account")
    assert Withdrawal.objects.get(pk=queue[1].pk).status == Withdrawal.Status.REJECTED


def test_batches_need_the_pay_permission_and_four_eyes(queue, payer):
    nobody = _staff_with("view_payoutbatch", "change_withdrawal")
    with pytest.raises(PermissionDenied):
        payouts.payout_batch_export(currency="EUR", actor=nobody)
    batch, _ = payouts.payout_batch_export(currency="EUR", actor=payer)
    for fn in (payouts.payout_batch_mark_sent, payouts.payout_batch_cancel):
        with pytest.raises(PermissionDenied):
            fn(batch=batch, actor=nobody)
    investor_payer = queue[0].investor
    investor_payer.is_staff = True
    investor_payer.save()
    investor_payer.user_permissions.add(Permission.objects.get(codename="pay_withdrawals"))
    investor_payer = type(investor_payer).objects.get(pk=investor_payer.pk)
    with pytest.raises(PermissionDenied, match="Four eyes"):
        payouts.payout_batch_mark_sent(batch=batch, actor=investor_payer)
    assert set(Withdrawal.objects.values_list("status", flat=True)) == {Withdrawal.Status.REQUESTED}


def test_the_debtor_is_the_platform_eur_account_when_configured(settings):
    settings.PLATFORM_BANK_ACCOUNTS = {
        "EUR": {"holder": "RWA Platform", "iban": "DE02 1203 0000 0000 2020 51", "bic": "BYLADEM1001", "bank": "DKB"}
    }
    assert payouts.debtor_account() == {"name": "RWA Platform", "IBAN": "DE02120300000000202051", "BIC": "BYLADEM1001"}
    settings.PLATFORM_BANK_ACCOUNTS = {}
    assert payouts.debtor_account()["IBAN"] == payouts.settings.PAYOUT_DEBTOR_ACCOUNT["iban"]


# -- races on PostgreSQL (real threads, real commits) ------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_exports_never_take_the_same_withdrawal(queue, payer):
    from .test_concurrency import run_in_threads

    results = run_in_threads([lambda: payouts.payout_batch_export(currency="EUR", actor=payer)] * 2)
    files = [r for r in results if isinstance(r, tuple)]
    assert files and all(isinstance(r, (tuple, ValidationError)) for r in results), results
    e2e = [t["e2e"] for _, xml in files for t in _transactions(xml)]
    assert sorted(e2e) == sorted(w.public_id.hex for w in queue)  # each exactly once across the files
    assert sum(PayoutBatch.objects.values_list("count", flat=True)) == 3
    assert Withdrawal.objects.filter(batch__isnull=True).count() == 0


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_mark_sent_pay_once(queue, payer):
    from .test_concurrency import cash_invariants, run_in_threads

    batch, _ = payouts.payout_batch_export(currency="EUR", actor=payer)
    results = run_in_threads([lambda: payouts.payout_batch_mark_sent(batch=batch, actor=payer)] * 3)
    assert all(isinstance(r, PayoutBatch) for r in results), results
    assert JournalEntry.objects.filter(kind=JournalEntry.Kind.WITHDRAWAL_PAID).count() == 3
    assert AuditEntry.objects.filter(action="payout.batch_sent").count() == 1
    cash_invariants()
