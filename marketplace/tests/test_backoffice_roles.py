"""Staff roles (not superusers) reach the back-office screens their role is for."""

import pytest
from django.urls import reverse

from accounts.roles import ADMIN, COMPLIANCE_OFFICER, INVESTOR
from accounts.tests.factories import UserFactory

pytestmark = pytest.mark.django_db

OPERATIONS_PAGES = [
    "admin:marketplace_deposit_changelist",
    "admin:marketplace_deposit_add",
    "admin:marketplace_withdrawal_changelist",
    "admin:marketplace_primaryorder_changelist",
    "admin:marketplace_offering_changelist",
    "admin:chain_chaintransaction_changelist",
    "admin:assets_asset_changelist",
]


@pytest.mark.parametrize("page", OPERATIONS_PAGES)
def test_admin_role_reaches_operations_pages(client, page):
    client.force_login(UserFactory(roles=[ADMIN], is_staff=True))
    assert client.get(reverse(page)).status_code == 200


@pytest.mark.parametrize("page", ["admin:marketplace_deposit_add", "admin:chain_chaintransaction_changelist"])
def test_compliance_officer_does_not_move_cash(client, page):
    client.force_login(UserFactory(roles=[COMPLIANCE_OFFICER, INVESTOR], is_staff=True))
    assert client.get(reverse(page)).status_code == 403


HOLDINGS = "admin:marketplace_holding_changelist"


def test_the_holdings_list_is_for_operations_staff_only(client):
    """Read only for the admin role (view_holding); an investor is sent to the admin login,
    staff without the permission are refused, nobody may add, change or delete a holding."""
    from marketplace.models import Holding
    from marketplace.tests.factories import OfferingFactory

    investor = UserFactory(roles=[INVESTOR])
    holding = Holding.objects.create(investor=investor, asset=OfferingFactory().asset, quantity=3)
    client.force_login(investor)
    assert client.get(reverse(HOLDINGS)).status_code == 302  # to the admin login
    client.force_login(UserFactory(roles=[COMPLIANCE_OFFICER, INVESTOR], is_staff=True))
    assert client.get(reverse(HOLDINGS)).status_code == 403
    client.force_login(UserFactory(roles=[ADMIN], is_staff=True))
    assert client.get(reverse(HOLDINGS)).status_code == 200
    assert client.get(reverse("admin:marketplace_holding_add")).status_code == 403
    change = reverse("admin:marketplace_holding_change", args=[holding.pk])
    assert client.post(change, {"quantity": "999"}).status_code == 403
    assert (
        client.post(reverse("admin:marketplace_holding_delete", args=[holding.pk]), {"post": "yes"}).status_code == 403
    )
    holding.refresh_from_db()
    assert holding.quantity == 3


@pytest.mark.parametrize(
    "query",
    [
        {"q": "1e309"},
        {"q": "١٢٣"},
        {"q": "x" * 10_000},
        {"q": "a\x00b"},
        {"p": "1e309"},
        {"p": "１２"},
        {"o": "x" * 10_000},
        {"investor__id__exact": "1e309"},
    ],
    ids=["exponent", "arabic-digits", "10k-chars", "nul", "page-exponent", "fullwidth-page", "long-order", "filter"],
)
def test_the_holdings_list_answers_hostile_values_without_a_server_error(client, query):
    client.force_login(UserFactory(roles=[ADMIN], is_staff=True))
    response = client.get(reverse(HOLDINGS), query)
    assert 200 <= response.status_code < 500
