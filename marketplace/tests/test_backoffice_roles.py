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
