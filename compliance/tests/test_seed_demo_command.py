import pytest
from allauth.account.models import EmailAddress
from django.core.management import call_command

from accounts.models import User
from accounts.roles import user_roles
from compliance.management.commands.seed_demo import DEMO_PASSWORD

pytestmark = pytest.mark.django_db

EXPECTED = {
    "admin@demo.rwa": {"admin", "investor"},
    "compliance@demo.rwa": {"compliance_officer", "investor"},
    "issuer@demo.rwa": {"issuer", "investor"},
    "investor@demo.rwa": {"investor"},
    "nora@demo.rwa": {"investor"},
    "otto@demo.rwa": {"investor"},
    "lena@demo.rwa": {"investor"},
    "una@demo.rwa": {"investor"},
    "viktor@demo.rwa": {"investor"},
}


def _snapshot():
    return {
        u.email: ({r.name for r in user_roles(u)}, u.is_staff, u.is_superuser)
        for u in User.objects.prefetch_related("groups")
    }


def test_seed_demo_creates_one_verified_login_per_role(client):
    call_command("seed_demo", stdout=open("/dev/null", "w"))

    snapshot = _snapshot()
    assert {email: roles for email, (roles, _, _) in snapshot.items()} == EXPECTED
    assert snapshot["admin@demo.rwa"][1:] == (True, True)
    assert snapshot["compliance@demo.rwa"][1:] == (True, False)
    assert snapshot["investor@demo.rwa"][1:] == (False, False)
    assert EmailAddress.objects.filter(verified=True, primary=True).count() == len(EXPECTED)
    # each demo login really signs in through allauth
    for email in EXPECTED:
        response = client.post("/accounts/login/", {"login": email, "password": DEMO_PASSWORD})
        assert response.status_code == 302, email
        client.logout()


def test_seed_demo_is_idempotent_and_resets_the_demo_password():
    # Given a seeded database where a demo user changed their password
    call_command("seed_demo", stdout=open("/dev/null", "w"))
    investor = User.objects.get(email="investor@demo.rwa")
    investor.set_password("something-else-entirely")
    investor.save()
    before = _snapshot()

    # When the command runs again
    call_command("seed_demo", stdout=open("/dev/null", "w"))

    # Then nothing is duplicated or changed, except the password is the demo one again
    assert _snapshot() == before
    assert User.objects.count() == len(EXPECTED)
    assert EmailAddress.objects.count() == len(EXPECTED)
    investor.refresh_from_db()
    assert investor.check_password(DEMO_PASSWORD)
