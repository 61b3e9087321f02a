"""Security audit of the account pages: the `next` parameter of sign-in and sign-out
never sends the user to another site, and is escaped where the page repeats it."""

import pytest
from django.urls import reverse

from .factories import DEFAULT_PASSWORD, UserFactory

pytestmark = pytest.mark.django_db

OFFSITE = [
    "https://evil.example/steal",
    "//evil.example/steal",
    "https:evil.example",
    "/\\evil.example",
    "\\\\evil.example",
]


def _sign_in(client, next_url):
    user = UserFactory()
    return client.post(reverse("account_login"), {"login": user.email, "password": DEFAULT_PASSWORD, "next": next_url})


@pytest.mark.parametrize("next_url", OFFSITE)
def test_sign_in_never_redirects_off_site(client, next_url):
    response = _sign_in(client, next_url)
    assert response.status_code == 302
    assert response["Location"] == reverse("accounts:profile")


def test_sign_in_follows_a_next_on_this_site(client):
    response = _sign_in(client, reverse("marketplace:portfolio"))
    assert response.status_code == 302 and response["Location"] == reverse("marketplace:portfolio")


@pytest.mark.parametrize("next_url", OFFSITE)
def test_sign_out_never_redirects_off_site(client, next_url):
    client.force_login(UserFactory())
    response = client.post(reverse("account_logout"), {"next": next_url})
    assert response.status_code == 302 and "evil.example" not in response["Location"]
    assert "_auth_user_id" not in client.session


def test_sign_in_page_escapes_the_next_parameter(client):
    response = client.get(reverse("account_login"), {"next": '/"><script>alert(1)</script>'})
    assert response.status_code == 200
    assert "<script>alert(1)</script>" not in response.content.decode()
