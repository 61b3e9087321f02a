"""Security audit of the marketplace's views: another user's order, holding, cash and
CSV are never shown; state changes are POST-only and CSRF-protected; the back-office
pages refuse non-staff."""

import csv
import io

import pytest
from django.test import Client
from django.urls import reverse

from accounts.roles import ADMIN, COMPLIANCE_OFFICER, INVESTOR
from accounts.tests.factories import UserFactory
from marketplace.models import PrimaryOrder, Withdrawal
from marketplace.services import order_place, withdrawal_request

from .factories import usable_payout_account, verified_investor
from .test_orders import confirm

pytestmark = pytest.mark.django_db


@pytest.fixture
def order(offering, investor, fund):
    fund(investor, 100_000)
    return order_place(investor=investor, offering_id=offering.pk, quantity=2, idempotency_key="audit")


def _login_redirect(response) -> bool:
    return response.status_code == 302 and response["Location"].startswith(reverse("account_login"))


# Orders ------------------------------------------------------------------------------


def test_staff_without_the_order_permission_cannot_read_an_investors_order(client, order):
    # A compliance officer is staff but has no marketplace.view_primaryorder
    client.force_login(UserFactory(roles=[COMPLIANCE_OFFICER], is_staff=True))
    assert client.get(reverse("marketplace:order", args=[order.public_id])).status_code == 404
    client.force_login(UserFactory(is_staff=True))
    assert client.get(reverse("marketplace:order", args=[order.public_id])).status_code == 404


def test_operations_staff_can_read_an_investors_order(client, order):
    client.force_login(UserFactory(roles=[ADMIN], is_staff=True))
    assert client.get(reverse("marketplace:order", args=[order.public_id])).status_code == 200


def test_anonymous_is_sent_to_sign_in_for_an_order(client, order):
    assert _login_redirect(client.get(reverse("marketplace:order", args=[order.public_id])))


# Portfolio, CSV, on-chain check -------------------------------------------------------


def test_portfolio_and_csv_show_only_the_users_own_cash_and_orders(client, offering, investor, fund):
    other = verified_investor()
    fund(investor, 12_345)
    fund(other, 67_890)
    theirs = order_place(investor=other, offering_id=offering.pk, quantity=3, idempotency_key="other")
    client.force_login(investor)

    body = client.get(reverse("marketplace:portfolio")).content.decode()
    assert "123.45" in body
    assert "678.90" not in body and str(theirs.public_id)[:8] not in body

    rows = list(csv.DictReader(io.StringIO(client.get(reverse("marketplace:portfolio_csv")).content.decode())))
    assert [r["amount"] for r in rows] == ["123.45"]
    assert all(r["order"] != str(theirs.public_id) for r in rows)


def test_anonymous_is_sent_to_sign_in_for_portfolio_csv_and_chain_check(client, order):
    confirm(order)
    holding = order.investor.holdings.get()
    for url in (
        reverse("marketplace:portfolio"),
        reverse("marketplace:portfolio_csv"),
        reverse("marketplace:holding_chain_check", args=[holding.pk]),
    ):
        assert _login_redirect(client.get(url)), url


# POST only, CSRF ---------------------------------------------------------------------


def test_order_place_and_withdrawal_refuse_get(client, offering, investor, fund):
    fund(investor, 100_000)
    client.force_login(investor)
    assert (
        client.get(
            reverse("marketplace:order_place", args=[offering.asset.public_id]),
            {"quantity": "1", "idempotency_key": "g"},
        ).status_code
        == 405
    )
    assert (
        client.get(reverse("marketplace:withdrawal_create"), {"amount": "1.00", "currency": "EUR"}).status_code == 405
    )
    assert not PrimaryOrder.objects.exists() and not Withdrawal.objects.exists()


def test_order_place_and_withdrawal_refuse_a_post_without_csrf_token(offering, investor, fund):
    fund(investor, 100_000)
    client = Client(enforce_csrf_checks=True)
    client.force_login(investor)
    response = client.post(
        reverse("marketplace:order_place", args=[offering.asset.public_id]), {"quantity": "1", "idempotency_key": "c"}
    )
    assert response.status_code == 403
    response = client.post(reverse("marketplace:withdrawal_create"), {"amount": "1.00", "currency": "EUR"})
    assert response.status_code == 403
    assert not PrimaryOrder.objects.exists() and not Withdrawal.objects.exists()


def test_anonymous_post_places_nothing(client, offering):
    response = client.post(
        reverse("marketplace:order_place", args=[offering.asset.public_id]), {"quantity": "1", "idempotency_key": "a"}
    )
    assert _login_redirect(response)
    assert _login_redirect(client.post(reverse("marketplace:withdrawal_create"), {"amount": "1.00", "currency": "EUR"}))
    assert not PrimaryOrder.objects.exists() and not Withdrawal.objects.exists()


# Back office -------------------------------------------------------------------------


@pytest.fixture
def withdrawal(investor, fund):
    fund(investor, 10_000)
    return withdrawal_request(
        investor=investor, amount_minor=1_000, currency="EUR", payout_account=usable_payout_account(investor)
    )


def test_non_staff_cannot_decide_a_withdrawal_or_resolve_an_order(client, withdrawal, order):
    client.force_login(UserFactory())
    for url in (
        reverse("admin:marketplace_withdrawal_decide", args=[withdrawal.pk]),
        reverse("admin:marketplace_primaryorder_resolve", args=[order.pk]),
    ):
        response = client.post(url, {"text": "REF-1", "_pay": "1", "_refund": "1"})
        assert response.status_code == 302 and "/backoffice/login/" in response["Location"], url
    withdrawal.refresh_from_db()
    order.refresh_from_db()
    assert withdrawal.status == Withdrawal.Status.REQUESTED and order.status == PrimaryOrder.Status.RESERVED


def test_staff_without_the_cash_permission_cannot_pay_a_withdrawal(client, withdrawal):
    client.force_login(UserFactory(roles=[COMPLIANCE_OFFICER, INVESTOR], is_staff=True))
    client.post(reverse("admin:marketplace_withdrawal_decide", args=[withdrawal.pk]), {"text": "REF-1", "_pay": "1"})
    withdrawal.refresh_from_db()
    assert withdrawal.status == Withdrawal.Status.REQUESTED and withdrawal.bank_reference == ""


def test_staff_without_the_permissions_cannot_even_open_the_decision_pages(client, withdrawal, order):
    """The pages show the investor, the amount and the failure reason: 403 without the
    permission to decide, as the change pages do."""
    client.force_login(UserFactory(roles=[COMPLIANCE_OFFICER, INVESTOR], is_staff=True))
    for url in (
        reverse("admin:marketplace_withdrawal_decide", args=[withdrawal.pk]),
        reverse("admin:marketplace_primaryorder_resolve", args=[order.pk]),
    ):
        response = client.get(url)
        assert response.status_code == 403, url
        assert withdrawal.investor.email not in response.content.decode()


def test_quote_does_not_reflect_what_was_typed(client, offering):
    response = client.get(
        reverse("marketplace:quote", args=[offering.asset.public_id]),
        {"quantity": "<script>alert(1)</script>"},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    assert "<script>alert(1)</script>" not in response.content.decode()
    assert "whole number" in response.content.decode()
