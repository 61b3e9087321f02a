"""Security audit of the site-wide URLs: the back office refuses investors and issuers
and its sign-in never redirects off site; the health probes change nothing."""

import pytest
from django.urls import reverse

from accounts.roles import INVESTOR, ISSUER
from accounts.tests.factories import DEFAULT_PASSWORD, UserFactory

pytestmark = pytest.mark.django_db


def test_back_office_refuses_a_signed_in_investor_and_issuer(client):
    client.force_login(UserFactory(roles=[INVESTOR, ISSUER]))
    response = client.get(reverse("admin:index"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("admin:login"))


def test_back_office_refuses_a_deactivated_staff_member(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True, is_active=False))
    response = client.get(reverse("admin:index"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("admin:login"))


@pytest.mark.parametrize("next_url", ["https://evil.example/", "//evil.example/"])
def test_back_office_sign_in_never_redirects_off_site(client, next_url):
    staff = UserFactory(is_staff=True, is_superuser=True)
    # The back office's sign-in sends to allauth's login, keeping only an on-site next.
    to_login = client.get(f"{reverse('admin:login')}?next={next_url}")
    assert to_login.status_code == 302 and to_login["Location"].startswith(reverse("account_login"))

    response = client.post(to_login["Location"], {"login": staff.email, "password": DEFAULT_PASSWORD}, follow=True)

    assert response.status_code == 200 and client.session["_auth_user_id"] == str(staff.pk)
    assert response.redirect_chain, "signing in redirects"
    for location, _ in response.redirect_chain:
        assert location.startswith("/") and not location.startswith("//"), location
    assert response.redirect_chain[-1][0] == reverse("admin:index")
