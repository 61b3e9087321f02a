import pytest
from django.urls import reverse

from compliance.models import AuditEntry
from marketplace.models import Deposit, LedgerAccount, Offering, Withdrawal
from marketplace.services import order_place, withdrawal_request

from .factories import usable_payout_account
from .test_orders import fail

pytestmark = pytest.mark.django_db


def test_staff_record_a_deposit_with_a_bank_reference_in_admin(client, staff, investor):
    client.force_login(staff)
    url = reverse("admin:marketplace_deposit_add")
    assert client.get(url).status_code == 200
    data = {"investor": investor.pk, "amount": "1,250.50", "currency": "EUR", "bank_reference": "SEPA-77"}
    response = client.post(url, data, follow=True)
    assert "Deposit recorded: 1,250.50 EUR" in response.content.decode()
    assert LedgerAccount.objects.get(user=investor, kind="investor_available").balance == 125_050
    response = client.post(url, data)
    assert "already recorded" in response.content.decode() and Deposit.objects.count() == 1


def test_non_staff_cannot_reach_the_deposit_form(client, investor):
    client.force_login(investor)
    assert client.get(reverse("admin:marketplace_deposit_add")).status_code == 302  # to the admin login


def test_staff_pay_a_withdrawal_in_admin(client, staff, investor, fund):
    fund(investor, 10_000)
    withdrawal = withdrawal_request(
        investor=investor, amount_minor=2_500, currency="EUR", payout_account=usable_payout_account(investor)
    )
    client.force_login(staff)
    url = reverse("admin:marketplace_withdrawal_decide", args=[withdrawal.pk])
    client.post(url, {"text": "OUT-REF-1", "_pay": "1"})
    withdrawal.refresh_from_db()
    assert withdrawal.status == Withdrawal.Status.PAID and withdrawal.bank_reference == "OUT-REF-1"
    assert AuditEntry.objects.filter(action="cash.withdrawal_paid", actor_id=staff.pk).exists()


def test_staff_refund_a_failed_settlement_in_admin(client, staff, offering, investor, fund):
    fund(investor, 100_000)
    order = order_place(investor=investor, offering_id=offering.pk, quantity=2, idempotency_key="k")
    fail(order)
    client.force_login(staff)
    changelist = client.get(reverse("admin:marketplace_primaryorder_changelist") + "?status__exact=failed")
    assert "asset frozen" in changelist.content.decode()
    url = reverse("admin:marketplace_primaryorder_resolve", args=[order.pk])
    response = client.post(url, {"text": "", "_refund": "1"}, follow=True)
    assert "Say why" in response.content.decode()
    client.post(url, {"text": "Cannot deliver", "_refund": "1"})
    order.refresh_from_db()
    assert order.status == "refunded"


def test_staff_change_offering_terms_through_the_service(client, staff, offering):
    client.force_login(staff)
    url = reverse("admin:marketplace_offering_change", args=[offering.pk])
    assert client.get(url).status_code == 200
    data = {
        "price_per_fraction_minor": "120.00",  # typed in the currency's units (issue 15, defect 10)
        "fractions_for_sale": 900,
        "min_purchase": 2,
        "max_purchase": 40,
        "fee_bps": 75,
        "opens_at_0": "2026-01-01",
        "opens_at_1": "09:00:00",
        "closes_at_0": "2027-12-31",
        "closes_at_1": "17:00:00",
        "status": "open",
    }
    response = client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:3000]
    offering.refresh_from_db()
    assert (offering.fee_bps, offering.fractions_for_sale, offering.min_purchase) == (75, 900, 2)
    assert offering.price_per_fraction_minor == 12_000
    # The offering keeps the one window; the asset page shows it (not the issuer's proposal).
    assert (
        "31 Dec 2027 17:00 UTC"
        in client.get(reverse("assets:detail", args=[offering.asset.public_id])).content.decode()
    )
    assert AuditEntry.objects.filter(action="offering.updated", actor_id=staff.pk).exists()
    assert Offering.objects.count() == 1
