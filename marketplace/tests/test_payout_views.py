"""Pages of payouts: the investor's payout accounts, the withdrawal form naming one, and
the back office's review queue and payout batches."""

import xml.etree.ElementTree as ET
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.core import mail
from django.test import Client
from django.urls import reverse

from accounts.tests.factories import UserFactory
from marketplace import payouts
from marketplace.models import PayoutAccount, PayoutBatch, Withdrawal
from marketplace.services import withdrawal_request

from .factories import StaffFactory, usable_payout_account, verified_investor
from .test_payouts import GOOD_IBAN, NS, _schema

pytestmark = pytest.mark.django_db
PS = PayoutAccount.Status


def _staff_with(*codenames):
    user = StaffFactory(is_superuser=False, roles=())
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="marketplace", codename__in=codenames))
    return user


@pytest.fixture
def investor_client(client, investor):
    client.force_login(investor)
    return client


# -- investor pages ------------------------------------------------------------------------


def test_the_page_needs_a_login(client):
    response = client.get(reverse("marketplace:payout_accounts"))
    assert response.status_code == 302 and "login" in response["Location"]


def test_add_an_account_then_it_is_listed_with_its_cooling_off_and_mailed(
    investor_client, investor, django_capture_on_commit_callbacks
):
    legal = payouts.verified_legal_name(investor)
    with django_capture_on_commit_callbacks(execute=True):
        response = investor_client.post(
            reverse("marketplace:payout_account_add"),
            {"holder_name": legal, "iban": "de89 3704 0044 0532 0130 00", "bic": "", "label": "Main"},
            follow=True,
        )
    html = response.content.decode()
    assert response.status_code == 200 and "Account saved" in html
    account = PayoutAccount.objects.get(investor=investor)
    assert account.iban == GOOD_IBAN and account.status == PS.ACTIVE
    assert GOOD_IBAN in html and "Usable from" in html and "security cooling-off period" in html
    assert 'data-usable="no"' in html and "Matches your verified name" in html
    assert len(mail.outbox) == 1 and "If this wasn't you" in mail.outbox[0].body
    PayoutAccount.objects.filter(pk=account.pk).update(usable_from=account.usable_from - timedelta(days=2))
    html = investor_client.get(reverse("marketplace:payout_accounts")).content.decode()
    assert 'data-usable="yes"' in html and "Ready: withdrawals can be paid to it" in html


def test_an_account_in_another_name_shows_its_review_state(investor_client, investor):
    response = investor_client.post(
        reverse("marketplace:payout_account_add"),
        {"holder_name": "Someone Else", "iban": GOOD_IBAN},
        follow=True,
    )
    html = response.content.decode()
    assert "our team reviews it" in html and "Waiting for review" in html
    assert PayoutAccount.objects.get(investor=investor).status == PS.REVIEW


@pytest.mark.parametrize(
    "iban, message",
    [
        ("DE88370400440532013000", "check digits"),
        ("DE89\x00370400440532013000", "Null characters"),
        ("X" * 10_000, ""),
    ],
)
def test_a_bad_iban_is_answered_in_the_form(investor_client, investor, iban, message):
    response = investor_client.post(reverse("marketplace:payout_account_add"), {"holder_name": "A B", "iban": iban})
    assert response.status_code == 422
    assert message in response.content.decode()
    assert not PayoutAccount.objects.exists()


def test_remove_own_account_and_anothers_is_a_404(investor_client, investor):
    mine = usable_payout_account(investor)
    theirs = usable_payout_account(verified_investor())
    response = investor_client.post(reverse("marketplace:payout_account_remove", args=[theirs.public_id]))
    assert response.status_code == 404
    theirs.refresh_from_db()
    assert theirs.status == PS.ACTIVE
    assert investor_client.get(reverse("marketplace:payout_account_remove", args=[mine.public_id])).status_code == 405
    response = investor_client.post(reverse("marketplace:payout_account_remove", args=[mine.public_id]), follow=True)
    assert "Account removed" in response.content.decode()
    mine.refresh_from_db()
    assert mine.status == PS.REMOVED
    assert theirs.iban not in investor_client.get(reverse("marketplace:payout_accounts")).content.decode()


def test_the_portfolio_links_to_payout_accounts_and_says_when_none_is_usable(investor_client, investor, fund):
    fund(investor, 10_000)
    html = investor_client.get(reverse("marketplace:portfolio")).content.decode()
    assert reverse("marketplace:payout_accounts") in html and 'id="no-payout-account"' in html
    assert "Add a payout account" in html and 'name="payout_account"' not in html
    account = usable_payout_account(investor, label="Savings")
    html = investor_client.get(reverse("marketplace:portfolio")).content.decode()
    assert 'name="payout_account"' in html and str(account.public_id) in html and "Savings" in html


def test_a_withdrawal_names_a_usable_account(investor_client, investor, fund):
    fund(investor, 10_000)
    new = payouts.payout_account_add(investor=investor, holder_name="X Y", iban=GOOD_IBAN)
    url = reverse("marketplace:withdrawal_create")
    response = investor_client.post(
        url, {"amount": "10.00", "currency": "EUR", "payout_account": str(new.public_id)}, follow=True
    )
    assert "Choose one of your payout accounts" in response.content.decode()
    response = investor_client.post(url, {"amount": "10.00", "currency": "EUR"}, follow=True)
    assert "Choose the bank account" in response.content.decode()
    assert not Withdrawal.objects.exists()
    usable = usable_payout_account(investor)
    response = investor_client.post(
        url, {"amount": "10.00", "currency": "EUR", "payout_account": str(usable.public_id)}, follow=True
    )
    assert "Withdrawal requested" in response.content.decode()
    assert Withdrawal.objects.get().payout_account == usable


def test_every_investor_post_needs_the_csrf_token(investor, fund):
    fund(investor, 10_000)
    account = usable_payout_account(investor)
    client = Client(enforce_csrf_checks=True)
    client.force_login(investor)
    posts = [
        (reverse("marketplace:payout_account_add"), {"holder_name": "A B", "iban": GOOD_IBAN}),
        (reverse("marketplace:payout_account_remove", args=[account.public_id]), {}),
        (
            reverse("marketplace:withdrawal_create"),
            {"amount": "1.00", "currency": "EUR", "payout_account": str(account.public_id)},
        ),
    ]
    for url, data in posts:
        assert client.post(url, data).status_code == 403, url
    account.refresh_from_db()
    assert PayoutAccount.objects.count() == 1 and account.status == PS.ACTIVE and not Withdrawal.objects.exists()


# -- back office -----------------------------------------------------------------------------


@pytest.fixture
def flagged(db):
    investor = verified_investor()
    return payouts.payout_account_add(investor=investor, holder_name="Other Name", iban=GOOD_IBAN)


def test_review_queue_and_clearing_in_the_back_office(client, flagged):
    reviewer = _staff_with("review_payoutaccount")
    client.force_login(reviewer)
    listing = client.get(reverse("admin:marketplace_payoutaccount_changelist") + "?status__exact=review")
    assert listing.status_code == 200 and "Clear or reject" in listing.content.decode()
    url = reverse("admin:marketplace_payoutaccount_review", args=[flagged.pk])
    page = client.get(url).content.decode()
    assert "Other Name" in page and payouts.verified_legal_name(flagged.investor) in page
    client.post(url, {"text": "", "_clear": "1"})
    flagged.refresh_from_db()
    assert flagged.status == PS.ACTIVE and flagged.reviewed_by == reviewer


def test_review_without_the_permission_is_403(client, flagged):
    client.force_login(_staff_with("view_payoutaccount"))
    url = reverse("admin:marketplace_payoutaccount_review", args=[flagged.pk])
    assert client.get(url).status_code == 403
    assert client.post(url, {"text": "", "_clear": "1"}).status_code == 403
    flagged.refresh_from_db()
    assert flagged.status == PS.REVIEW


@pytest.fixture
def requested(fund):
    investor = verified_investor()
    fund(investor, 10_000)
    return withdrawal_request(
        investor=investor, amount_minor=2_550, currency="EUR", payout_account=usable_payout_account(investor)
    )


def test_export_downloads_a_valid_file_then_mark_sent_pays(client, requested):
    payer = _staff_with("pay_withdrawals", "view_payoutbatch")
    client.force_login(payer)
    listing = client.get(reverse("admin:marketplace_payoutbatch_changelist")).content.decode()
    assert reverse("admin:marketplace_payoutbatch_export") in listing
    url = reverse("admin:marketplace_payoutbatch_export")
    page = client.get(url).content.decode()
    assert "25.50 EUR" in page and requested.payout_account.iban in page
    response = client.post(url, {"withdrawal": [str(requested.pk)]})
    assert response.status_code == 200 and response["Content-Type"] == "application/xml"
    batch = PayoutBatch.objects.get()
    assert response["Content-Disposition"] == f'attachment; filename="payout-{batch.message_id}.xml"'
    _schema().validate(response.content.decode())
    amounts = [e.text for e in ET.fromstring(response.content).iterfind(".//p:InstdAmt", NS)]
    assert amounts == ["25.50"]
    decide = reverse("admin:marketplace_payoutbatch_decide", args=[batch.pk])
    client.post(decide, {"text": "", "_sent": "1"})
    client.post(decide, {"text": "", "_sent": "1"})  # a second click: nothing more
    requested.refresh_from_db()
    assert requested.status == Withdrawal.Status.PAID
    assert requested.entries.filter(kind="withdrawal_paid").count() == 1


def test_cancel_in_the_back_office(client, requested):
    payer = _staff_with("pay_withdrawals", "view_payoutbatch")
    batch, _ = payouts.payout_batch_export(currency="EUR", actor=payer)
    client.force_login(payer)
    client.post(reverse("admin:marketplace_payoutbatch_decide", args=[batch.pk]), {"text": "typo", "_cancel": "1"})
    batch.refresh_from_db()
    requested.refresh_from_db()
    assert batch.status == PayoutBatch.Status.CANCELLED and requested.batch is None


def test_batches_without_the_pay_permission_are_403(client, requested):
    payer = _staff_with("pay_withdrawals")
    batch, _ = payouts.payout_batch_export(currency="EUR", actor=payer)
    client.force_login(_staff_with("view_payoutbatch", "change_withdrawal"))
    export = reverse("admin:marketplace_payoutbatch_export")
    decide = reverse("admin:marketplace_payoutbatch_decide", args=[batch.pk])
    assert client.get(export).status_code == 403
    assert client.post(export, {"withdrawal": [str(requested.pk)]}).status_code == 403
    assert client.post(decide, {"text": "", "_sent": "1"}).status_code == 403
    batch.refresh_from_db()
    assert batch.status == PayoutBatch.Status.EXPORTED
    client.force_login(UserFactory())
    assert client.get(export).status_code == 302  # not staff: to the admin login


def test_every_back_office_post_needs_the_csrf_token(requested, flagged):
    staff = _staff_with("pay_withdrawals", "view_payoutbatch", "review_payoutaccount")
    batch, _ = payouts.payout_batch_export(currency="EUR", actor=staff)
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff)
    posts = [
        (reverse("admin:marketplace_payoutbatch_export"), {"withdrawal": [str(requested.pk)]}),
        (reverse("admin:marketplace_payoutbatch_decide", args=[batch.pk]), {"text": "", "_sent": "1"}),
        (reverse("admin:marketplace_payoutaccount_review", args=[flagged.pk]), {"text": "", "_clear": "1"}),
    ]
    for url, data in posts:
        assert client.post(url, data).status_code == 403, url
    batch.refresh_from_db()
    flagged.refresh_from_db()
    assert batch.status == PayoutBatch.Status.EXPORTED and flagged.status == PS.REVIEW
