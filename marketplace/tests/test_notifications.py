"""Users hear by email when something of theirs is decided or moves; never before the
change commits, and a mail failure never undoes the change."""

import pytest
from django.core import mail
from django.db import transaction

from accounts.notifications import notify
from accounts.tests.factories import UserFactory
from assets.models import Asset
from assets.services import asset_approve, asset_reject, asset_request_changes
from assets.tests.factories import AssetFactory
from compliance.services import kyc_application_approve, kyc_application_reject, kyc_application_request_info
from compliance.tests.factories import KycApplicationFactory, OfficerFactory
from marketplace.services import (
    deposit_record,
    order_compensate,
    order_place,
    withdrawal_approve,
    withdrawal_reject,
    withdrawal_request,
)

from .factories import usable_payout_account
from .test_orders import confirm, fail

pytestmark = pytest.mark.django_db


class BrokenMailBackend:
    """The email provider is the one boundary we stand in for: this one is down."""

    def __init__(self, *args, **kwargs):
        pass

    def send_messages(self, messages):
        raise ConnectionRefusedError("smtp down")


def _only_mail_to(user):
    assert [m.to for m in mail.outbox] == [[user.email]], [(m.to, m.subject) for m in mail.outbox]
    message = mail.outbox[0]
    mail.outbox.clear()
    return message


def test_kyc_decisions_reach_the_applicant(django_capture_on_commit_callbacks):
    officer = OfficerFactory()
    for decide, subject, words in [
        (
            lambda a: kyc_application_approve(application=a, reviewer=officer),
            "Your identity is verified",
            "valid until",
        ),
        (
            lambda a: kyc_application_reject(application=a, reviewer=officer, reason="Document unreadable"),
            "not approved",
            "Document unreadable",
        ),
        (
            lambda a: kyc_application_request_info(application=a, reviewer=officer, reason="Proof of address too old"),
            "need more information",
            "Proof of address too old",
        ),
    ]:
        app = KycApplicationFactory(submitted=True)
        with django_capture_on_commit_callbacks(execute=True):
            decide(app)
        message = _only_mail_to(app.user)
        assert subject in message.subject and words in message.body and "/market/dashboard/" in message.body


def test_issuance_decisions_reach_the_issuer(django_capture_on_commit_callbacks, settings, tmp_path):
    reviewer = UserFactory(is_staff=True, is_superuser=True)
    for decide, words in [
        (
            lambda a: asset_request_changes(asset=a, reviewer=reviewer, comment="Add the 2025 appraisal"),
            "Add the 2025 appraisal",
        ),
        (lambda a: asset_reject(asset=a, reviewer=reviewer, comment="Title not proven"), "Title not proven"),
        (lambda a: asset_approve(asset=a, reviewer=reviewer), "being created on Algorand"),
    ]:
        asset = AssetFactory(status=Asset.Status.SUBMITTED)
        with django_capture_on_commit_callbacks(execute=True):
            decide(asset)
        message = _only_mail_to(asset.issuer)
        assert asset.name in message.subject and words in message.body and str(asset.public_id) in message.body


def test_cash_and_orders_reach_the_investor(
    django_capture_on_commit_callbacks, offering, investor, staff, platform_accounts
):
    with django_capture_on_commit_callbacks(execute=True):
        deposit_record(investor=investor, amount_minor=100_000, currency="EUR", bank_reference="SEPA-1", actor=staff)
    assert "1,000.00 EUR received" in _only_mail_to(investor).subject

    with django_capture_on_commit_callbacks(execute=True):
        order = order_place(investor=investor, offering_id=offering.pk, quantity=2, idempotency_key="a")
    assert not mail.outbox  # an order placed is shown on screen, not mailed
    with django_capture_on_commit_callbacks(execute=True):
        confirm(order, round_=77, txid="T" * 52)
    message = _only_mail_to(investor)
    assert "2 " in message.subject and "round 77" in message.body and "T" * 52 in message.body

    with django_capture_on_commit_callbacks(execute=True):
        failing = order_place(investor=investor, offering_id=offering.pk, quantity=1, idempotency_key="b")
    with django_capture_on_commit_callbacks(execute=True):
        fail(failing)
    assert "nothing is lost" in _only_mail_to(investor).body
    with django_capture_on_commit_callbacks(execute=True):
        order_compensate(order=failing, actor=staff, reason="Supply short on chain")
    message = _only_mail_to(investor)
    assert "refunded" in message.subject.lower() and "Supply short on chain" in message.body

    with django_capture_on_commit_callbacks(execute=True):
        account = usable_payout_account(investor)
        paid = withdrawal_request(investor=investor, amount_minor=1_000, currency="EUR", payout_account=account)
        rejected = withdrawal_request(investor=investor, amount_minor=2_000, currency="EUR", payout_account=account)
    assert not mail.outbox
    with django_capture_on_commit_callbacks(execute=True):
        withdrawal_approve(withdrawal=paid, actor=staff, bank_reference="OUT-9")
    assert "OUT-9" in _only_mail_to(investor).body
    with django_capture_on_commit_callbacks(execute=True):
        withdrawal_reject(withdrawal=rejected, actor=staff, reason="Account name does not match")
    assert "Account name does not match" in _only_mail_to(investor).body


def test_nothing_is_sent_for_a_change_that_rolls_back(django_capture_on_commit_callbacks):
    user = UserFactory()
    with django_capture_on_commit_callbacks(execute=True):
        with pytest.raises(RuntimeError):
            with transaction.atomic():
                notify(user=user, subject="Hello", body="x")
                raise RuntimeError("the change failed")
    assert not mail.outbox


def test_a_mail_failure_never_undoes_the_change(django_capture_on_commit_callbacks, settings, staff, caplog):
    settings.EMAIL_BACKEND = f"{__name__}.BrokenMailBackend"
    investor = UserFactory()
    with django_capture_on_commit_callbacks(execute=True):
        deposit = deposit_record(
            investor=investor, amount_minor=5_000, currency="EUR", bank_reference="R-1", actor=staff
        )
    deposit.refresh_from_db()
    assert deposit.pk and "could not be sent" in caplog.text and "smtp down" in caplog.text
