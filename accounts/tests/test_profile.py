"""The profile page: who may see it, what it shows, and what it changes."""

import pytest
from django.test import Client
from django.urls import reverse

from .factories import UserFactory

pytestmark = pytest.mark.django_db

PROFILE = reverse("accounts:profile")


def test_profile_requires_login(client):
    response = client.get(PROFILE)

    assert response.status_code == 302
    assert response["Location"] == f"{reverse('account_login')}?next={PROFILE}"


def test_profile_shows_the_user_their_account_and_roles(client):
    user = UserFactory(email="ivan@example.com", full_name="Ivan Investor")
    client.force_login(user)

    response = client.get(PROFILE)

    html = response.content.decode()
    assert response.status_code == 200
    assert "ivan@example.com" in html
    assert 'value="Ivan Investor"' in html
    assert "Investor" in html
    assert reverse("mfa_index") in html


def test_profile_update_changes_the_name_and_confirms_it(client):
    user = UserFactory(full_name="Old Name")
    client.force_login(user)

    response = client.post(PROFILE, {"full_name": "  New Name  "}, follow=True)

    user.refresh_from_db()
    assert user.full_name == "New Name"
    assert response.redirect_chain == [(PROFILE, 302)]
    assert "Your profile was saved." in response.content.decode()


def test_profile_update_rejects_a_too_long_name_with_a_message(client):
    user = UserFactory(full_name="Kept Name")
    client.force_login(user)

    response = client.post(PROFILE, {"full_name": "x" * 151})

    assert response.status_code == 200
    assert "Ensure this value has at most 150 characters" in response.content.decode()
    user.refresh_from_db()
    assert user.full_name == "Kept Name"


def test_one_user_never_sees_or_changes_another_users_profile(client):
    # Given two users
    alice = UserFactory(email="alice@example.com", full_name="Alice Private")
    bob = UserFactory(email="bob@example.com", full_name="Bob")
    client.force_login(bob)

    # When Bob opens the profile page, even asking for Alice by id or email
    for url in (PROFILE, f"{PROFILE}?user={alice.pk}", f"{PROFILE}?email=alice@example.com"):
        html = client.get(url).content.decode()
        # Then he only ever sees his own data
        assert "bob@example.com" in html
        assert "alice@example.com" not in html
        assert "Alice Private" not in html

    # And a POST naming Alice only changes Bob
    client.post(PROFILE, {"full_name": "Changed", "id": alice.pk, "email": "alice@example.com"})
    alice.refresh_from_db()
    bob.refresh_from_db()
    assert (alice.full_name, alice.email) == ("Alice Private", "alice@example.com")
    assert (bob.full_name, bob.email) == ("Changed", "bob@example.com")


def test_profile_post_without_csrf_token_is_refused():
    # Given a client that enforces CSRF like a browser
    user = UserFactory(full_name="Kept Name")
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)

    # When it posts without the token
    response = client.post(PROFILE, {"full_name": "Forged"})

    # Then the request is refused with the styled 403 page and nothing changes
    assert response.status_code == 403
    assert "This form has expired" in response.content.decode()
    user.refresh_from_db()
    assert user.full_name == "Kept Name"


def test_profile_post_with_the_csrf_token_works():
    user = UserFactory()
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    client.get(PROFILE)
    token = client.cookies["csrftoken"].value

    response = client.post(PROFILE, {"full_name": "Real", "csrfmiddlewaretoken": token})

    assert response.status_code == 302
    user.refresh_from_db()
    assert user.full_name == "Real"


def test_htmx_requests_carry_the_csrf_token_from_the_body_headers(client):
    # The token rides on every HTMX request through hx-headers on <body>
    client.force_login(UserFactory())

    html = client.get(PROFILE).content.decode()

    assert '<body class="" hx-headers=\'{"X-CSRFToken": "' in html
    assert "htmx" in html


# One address per account; the email page cannot be used to mail strangers at will.


def test_an_investor_changes_their_address_instead_of_collecting_more(client):
    from allauth.account.models import EmailAddress
    from django.core import mail

    user = UserFactory(email="own@example.com")
    client.force_login(user)

    client.post(reverse("account_email"), {"action_add": "", "email": "first@example.com"})
    client.post(reverse("account_email"), {"action_add": "", "email": "second@example.com"})

    # the pending change replaces the earlier one; the verified address stays until then
    addresses = set(EmailAddress.objects.filter(user=user).values_list("email", "verified"))
    assert addresses == {("own@example.com", True), ("second@example.com", False)}
    # the mail to the typed address does not name the account that typed it
    assert mail.outbox and all("own@example.com" not in m.body for m in mail.outbox)


def test_changing_the_address_is_limited_to_five_tries_an_hour(client):
    from allauth.account.models import EmailAddress

    user = UserFactory()
    client.force_login(user)
    for n in range(5):
        client.post(reverse("account_email"), {"action_add": "", "email": f"try{n}@example.com"})

    response = client.post(reverse("account_email"), {"action_add": "", "email": "sixth@example.com"})

    assert response.status_code == 429
    assert "Too many" in response.content.decode() or "too many" in response.content.decode()
    assert not EmailAddress.objects.filter(email="sixth@example.com").exists()
