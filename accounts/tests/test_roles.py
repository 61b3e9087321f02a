"""Roles as groups: who gets which, and what the navigation offers each of them."""

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from accounts.models import User
from accounts.roles import ADMIN, COMPLIANCE_OFFICER, INVESTOR, ISSUER, user_has_role, user_roles

from .factories import UserFactory

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:accounts_user_changelist")


def _grant_issuer(client, *users):
    return client.post(
        CHANGELIST,
        {"action": "grant_issuer", "_selected_action": [u.pk for u in users], "index": 0},
        follow=True,
    )


def test_admin_role_grants_the_issuer_role_from_the_admin_action(client):
    # Given an administrator and two investors
    admin = UserFactory(roles=[ADMIN, INVESTOR])
    alice, bob = UserFactory(), UserFactory()
    client.force_login(admin)

    # When the admin runs the "Grant the issuer role" action on both
    response = _grant_issuer(client, alice, bob)

    # Then both are issuers (and still investors) and the admin is told so
    assert response.status_code == 200
    assert "Issuer role granted to 2 user(s)." in response.content.decode()
    for user in (alice, bob):
        assert {r.name for r in user_roles(user)} == {INVESTOR.name, ISSUER.name}
        user.refresh_from_db()
        assert not user.is_staff  # the issuer role is not a staff role


def test_compliance_officer_cannot_grant_the_issuer_role(client):
    # Given a compliance officer (staff, may view users, may not grant roles)
    officer = UserFactory(roles=[COMPLIANCE_OFFICER])
    alice = UserFactory()
    client.force_login(officer)

    # Then the action is not even offered ...
    page = client.get(CHANGELIST)
    assert page.status_code == 200
    assert "grant_issuer" not in page.content.decode()
    # ... and posting it anyway changes nothing
    _grant_issuer(client, alice)
    assert not user_has_role(alice, ISSUER)


def test_the_grant_permission_alone_is_what_unlocks_the_action(client):
    # Given a staff user with view rights, first without the grant permission
    staff = UserFactory(roles=[COMPLIANCE_OFFICER])
    alice = UserFactory()
    client.force_login(staff)
    _grant_issuer(client, alice)
    assert not user_has_role(alice, ISSUER)

    # When the permission is added directly
    staff.user_permissions.add(Permission.objects.get(codename="grant_issuer_role"))
    staff = User.objects.get(pk=staff.pk)  # drop the permission cache
    client.force_login(staff)
    _grant_issuer(client, alice)

    # Then the same action works
    assert user_has_role(alice, ISSUER)


def test_revoke_removes_only_the_issuer_role(client):
    admin = UserFactory(roles=[ADMIN])
    issuer = UserFactory(roles=[INVESTOR, ISSUER])
    client.force_login(admin)

    client.post(CHANGELIST, {"action": "revoke_issuer", "_selected_action": [issuer.pk], "index": 0})

    assert [r.name for r in user_roles(issuer)] == [INVESTOR.name]


def test_investors_and_issuers_cannot_open_the_back_office(client):
    for user in (UserFactory(), UserFactory(roles=[INVESTOR, ISSUER])):
        client.force_login(user)
        response = client.get(reverse("admin:index"))
        assert response.status_code == 302
        assert "/login/" in response["Location"]


@pytest.mark.parametrize(
    ("roles", "sees_back_office"),
    [
        ([INVESTOR], False),
        ([INVESTOR, ISSUER], False),
        ([COMPLIANCE_OFFICER], True),
        ([ADMIN], True),
    ],
    ids=["investor", "issuer", "compliance", "admin"],
)
def test_navigation_shows_back_office_only_to_staff_roles(client, roles, sees_back_office):
    client.force_login(UserFactory(roles=roles))

    response = client.get(reverse("home"))

    html = response.content.decode()
    assert ("Back office" in html) is sees_back_office
    assert ('href="/backoffice/"' in html) is sees_back_office
    assert "Profile" in html


def test_navigation_for_visitors_offers_sign_in_and_sign_up_only(client):
    response = client.get(reverse("home"))

    html = response.content.decode()
    assert reverse("account_login") in html
    assert reverse("account_signup") in html
    assert "Back office" not in html
    assert "Sign out" not in html


def test_staff_roles_make_the_user_staff():
    officer = UserFactory(roles=[COMPLIANCE_OFFICER])
    officer.refresh_from_db()
    assert officer.is_staff
