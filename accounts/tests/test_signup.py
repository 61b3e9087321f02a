"""Sign-up with mandatory email verification, and what bad input does to it."""

import re

import pytest
from allauth.account.models import EmailAddress
from django.core import mail
from django.urls import reverse

from accounts.models import User
from accounts.roles import INVESTOR

from .factories import UserFactory

pytestmark = pytest.mark.django_db

SIGNUP = reverse("account_signup")
LOGIN = reverse("account_login")


def _signup(client, email="new@example.com", password="Corr3ct-Horse-Battery", password2=None):
    return client.post(SIGNUP, {"email": email, "password1": password, "password2": password2 or password})


def _confirmation_link(message) -> str:
    match = re.search(r"https?://[^/\s]+(/accounts/confirm-email/[^\s]+/)", message.body)
    assert match, message.body
    return match.group(1)


def _counts():
    return User.objects.count(), EmailAddress.objects.count()


def test_signup_creates_an_investor_with_an_unverified_address_and_mails_a_link(client):
    # When someone signs up
    response = _signup(client, email="New@Example.com")

    # Then they are sent to the "check your inbox" page, not signed in
    assert response.status_code == 302
    assert response["Location"] == reverse("account_email_verification_sent")
    assert "_auth_user_id" not in client.session
    # And the account exists as an investor with an unverified primary address
    user = User.objects.get(email="new@example.com")
    assert list(user.groups.values_list("name", flat=True)) == [INVESTOR.name]
    address = EmailAddress.objects.get(user=user)
    assert (address.email, address.verified, address.primary) == ("new@example.com", False, True)
    # And exactly one mail with a confirmation link went to that address
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["new@example.com"]
    assert mail.outbox[0].subject.startswith("[RWA Marketplace] ")
    assert _confirmation_link(mail.outbox[0])


def test_login_is_refused_until_the_email_is_verified(client):
    # Given a fresh sign-up whose address is not verified yet
    _signup(client)
    client.logout()

    # When they try to sign in with the right password
    response = client.post(LOGIN, {"login": "new@example.com", "password": "Corr3ct-Horse-Battery"})

    # Then they are not signed in but sent to verify; the link is not mailed again
    # within the confirm_email rate-limit window
    assert response.status_code == 302
    assert response["Location"] == reverse("account_email_verification_sent")
    assert "_auth_user_id" not in client.session
    assert len(mail.outbox) == 1


def test_verification_link_verifies_the_address_and_then_login_works(client):
    # Given a sign-up and its confirmation mail
    _signup(client)
    link = _confirmation_link(mail.outbox[0])

    # When the link is opened (GET shows a confirm button; nothing changes on GET) ...
    page = client.get(link)
    assert page.status_code == 200
    assert not EmailAddress.objects.get(email="new@example.com").verified
    # ... and confirmed
    response = client.post(link)

    # Then the address is verified and the person can sign in
    assert response.status_code == 302
    assert EmailAddress.objects.get(email="new@example.com").verified
    response = client.post(LOGIN, {"login": "new@example.com", "password": "Corr3ct-Horse-Battery"})
    assert response.status_code == 302
    assert response["Location"] == reverse("accounts:profile")
    assert client.session["_auth_user_id"] == str(User.objects.get(email="new@example.com").pk)


def test_a_tampered_verification_link_verifies_nothing(client):
    _signup(client)

    response = client.post("/accounts/confirm-email/not-a-real-key/")

    assert response.status_code in (200, 404)
    assert not EmailAddress.objects.get(email="new@example.com").verified


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        (
            {"email": "not-an-email", "password1": "Corr3ct-Horse-Battery", "password2": "Corr3ct-Horse-Battery"},
            "email",
            "Enter a valid email address.",
        ),
        (
            {"email": "", "password1": "Corr3ct-Horse-Battery", "password2": "Corr3ct-Horse-Battery"},
            "email",
            "This field is required.",
        ),
        (
            {"email": "a@example.com", "password1": "Corr3ct-Horse-Battery", "password2": "Other-Horse-Battery"},
            "password2",
            "You must type the same password each time.",
        ),
        (
            {"email": "a@example.com", "password1": "password123", "password2": "password123"},
            "password1",
            "This password is too common.",
        ),
        (
            {"email": "a@example.com", "password1": "short1!", "password2": "short1!"},
            "password1",
            "This password is too short. It must contain at least 10 characters.",
        ),
        (
            {"email": "a@example.com", "password1": "8405719364", "password2": "8405719364"},
            "password1",
            "This password is entirely numeric.",
        ),
    ],
    ids=["bad-email", "no-email", "mismatch", "common", "short", "numeric"],
)
def test_invalid_signup_shows_the_reason_on_the_form_and_creates_nothing(client, data, field, message):
    # Given the current number of users and addresses
    before = _counts()

    # When the form is posted with bad data
    response = client.post(SIGNUP, data)

    # Then the form comes back with the message next to the field
    assert response.status_code == 200
    assert message in response.context["form"].errors[field]
    assert message in response.content.decode()
    # And nothing was created nor mailed
    assert _counts() == before
    assert mail.outbox == []


def test_signup_with_a_taken_email_creates_nothing_and_tells_only_the_owner(client):
    # Given an existing verified account
    owner = UserFactory(email="taken@example.com")
    before = _counts()

    # When someone signs up with the same address (in another case)
    response = _signup(client, email="Taken@Example.com")

    # Then the page does not reveal the account exists (enumeration prevention): the
    # visitor sees the same "check your inbox" page as any sign-up ...
    assert response.status_code == 302
    assert response["Location"] == reverse("account_email_verification_sent")
    # ... no second user or address appears, and the password was not changed
    assert _counts() == before
    owner.refresh_from_db()
    assert owner.check_password("Corr3ct-Horse-Battery")
    # ... and the real owner is told by mail that someone tried to sign up
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["taken@example.com"]
    assert "already" in mail.outbox[0].body.lower()


def test_signup_form_is_accessible(client):
    response = client.get(SIGNUP)

    html = response.content.decode()
    assert response.status_code == 200
    for name in ("email", "password1", "password2"):
        field_id = response.context["form"][name].id_for_label
        assert f'for="{field_id}"' in html
    assert 'autocomplete="email"' in html
    assert 'autocomplete="new-password"' in html


def test_signup_rate_limit_uses_the_shared_cache(client, settings):
    # Given a low sign-up limit per IP
    settings.ACCOUNT_RATE_LIMITS = {**settings.ACCOUNT_RATE_LIMITS, "signup": "2/m/ip"}

    # When a third sign-up comes from the same address within the minute
    _signup(client, email="one@example.com")
    client.logout()
    _signup(client, email="two@example.com")
    client.logout()
    before = _counts()
    response = _signup(client, email="three@example.com")

    # Then it is refused with the styled 429 page and nothing is created
    assert response.status_code == 429
    assert "Too many attempts" in response.content.decode()
    assert _counts() == before
