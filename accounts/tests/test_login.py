"""Email login, its rate limit, password reset and two-factor sign-in."""

import re

import pytest
from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from django.core import mail
from django.urls import reverse

from accounts.models import User

from .factories import DEFAULT_PASSWORD, UserFactory
from .totp import totp_code

pytestmark = pytest.mark.django_db

LOGIN = reverse("account_login")
RATE_LIMITED = "Too many failed sign-in attempts"


def _login(client, email, password):
    return client.post(LOGIN, {"login": email, "password": password})


def test_login_with_email_and_password_signs_in(client):
    user = UserFactory(email="ivan@example.com")

    response = _login(client, "IVAN@example.com", DEFAULT_PASSWORD)

    assert response.status_code == 302
    assert response["Location"] == reverse("accounts:profile")
    assert client.session["_auth_user_id"] == str(user.pk)


def test_login_form_asks_for_an_email_not_a_username(client):
    response = client.get(LOGIN)

    form = response.context["form"]
    assert form.fields["login"].label.lower().startswith("email")
    assert 'type="email"' in response.content.decode()
    assert "username" not in response.content.decode().lower()


def test_wrong_password_says_so_without_revealing_which_part_was_wrong(client):
    UserFactory(email="ivan@example.com")

    known = _login(client, "ivan@example.com", "wrong-password-1")
    unknown = _login(client, "nobody@example.com", "wrong-password-1")

    for response in (known, unknown):
        assert response.status_code == 200
        assert "_auth_user_id" not in client.session
        assert response.context["form"].non_field_errors() == [
            "The email address and/or password you specified are not correct."
        ]


def test_after_five_wrong_passwords_even_the_right_one_is_refused(client):
    # Given an account and five wrong passwords in a row
    UserFactory(email="ivan@example.com")
    for attempt in range(5):
        response = _login(client, "ivan@example.com", f"wrong-password-{attempt}")
        assert RATE_LIMITED not in response.content.decode()

    # When the right password is tried while the limit holds
    response = _login(client, "ivan@example.com", DEFAULT_PASSWORD)

    # Then the form says sign-in is paused and nobody is signed in
    assert response.status_code == 200
    assert RATE_LIMITED in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_failed_login_limit_is_also_per_ip_across_accounts(client):
    # Given wrong passwords spread over several accounts from one IP
    for n in range(5):
        _login(client, f"probe{n}@example.com", "wrong-password")
    UserFactory(email="ivan@example.com")

    # When a real account is tried from the same IP
    response = _login(client, "ivan@example.com", DEFAULT_PASSWORD)

    # Then the per-IP counter refuses it too
    assert RATE_LIMITED in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_password_reset_flow_sets_a_new_password(client):
    # Given an account
    user = UserFactory(email="ivan@example.com")

    # When a reset is requested
    response = client.post(reverse("account_reset_password"), {"email": "ivan@example.com"})
    assert response.status_code == 302
    assert len(mail.outbox) == 1
    link = re.search(r"https?://[^/\s]+(/accounts/password/reset/key/[^\s]+/)", mail.outbox[0].body).group(1)

    # ... and the link is followed (allauth moves the key into the session) ...
    response = client.get(link, follow=True)
    assert response.status_code == 200
    form_url = response.redirect_chain[-1][0]
    # ... and a new password is chosen
    response = client.post(form_url, {"password1": "N3w-Horse-Battery", "password2": "N3w-Horse-Battery"})

    # Then the password changed, and the old one no longer works
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.check_password("N3w-Horse-Battery")
    assert not user.check_password(DEFAULT_PASSWORD)
    client.logout()
    assert _login(client, "ivan@example.com", "N3w-Horse-Battery").status_code == 302


def test_password_reset_for_an_unknown_email_looks_the_same_and_sends_no_link(client):
    response = client.post(reverse("account_reset_password"), {"email": "nobody@example.com"})

    assert response.status_code == 302
    assert response["Location"] == reverse("account_reset_password_done")
    assert all("/password/reset/key/" not in m.body for m in mail.outbox)


def test_password_reset_rejects_a_weak_new_password(client):
    UserFactory(email="ivan@example.com")
    client.post(reverse("account_reset_password"), {"email": "ivan@example.com"})
    link = re.search(r"https?://[^/\s]+(/accounts/password/reset/key/[^\s]+/)", mail.outbox[0].body).group(1)
    form_url = client.get(link, follow=True).redirect_chain[-1][0]

    response = client.post(form_url, {"password1": "password123", "password2": "password123"})

    assert response.status_code == 200
    assert "This password is too common." in response.content.decode()


@pytest.fixture
def user_with_totp():
    user = UserFactory(email="mfa@example.com")
    secret = generate_totp_secret()
    TOTP.activate(user, secret)
    return user, secret


def test_login_with_totp_asks_for_a_code_after_the_password(client, user_with_totp):
    user, secret = user_with_totp

    # When the password is right
    response = _login(client, user.email, DEFAULT_PASSWORD)

    # Then a second step asks for the code, and the user is not signed in yet
    assert response.status_code == 302
    assert response["Location"] == reverse("mfa_authenticate")
    assert "_auth_user_id" not in client.session

    # When the right code is entered
    response = client.post(reverse("mfa_authenticate"), {"code": totp_code(secret)})

    # Then they are signed in
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(user.pk)


def test_wrong_totp_code_is_refused_with_a_message(client, user_with_totp):
    user, secret = user_with_totp
    _login(client, user.email, DEFAULT_PASSWORD)
    wrong = f"{(int(totp_code(secret)) + 1) % 1_000_000:06d}"

    response = client.post(reverse("mfa_authenticate"), {"code": wrong})

    assert response.status_code == 200
    assert "Incorrect code." in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_activating_totp_with_a_wrong_code_creates_no_authenticator(client):
    # Given a signed-in user who confirmed their password again, as allauth asks
    # before any change to two-factor settings
    user = UserFactory()
    client.force_login(user)
    to_reauth = client.get(reverse("mfa_activate_totp"))
    assert to_reauth.status_code == 302
    assert to_reauth["Location"].startswith(reverse("account_reauthenticate"))
    client.post(to_reauth["Location"], {"password": DEFAULT_PASSWORD})
    page = client.get(reverse("mfa_activate_totp"))
    assert page.status_code == 200
    secret = page.context["form"].secret

    # When a wrong code is submitted
    wrong = f"{(int(totp_code(secret)) + 1) % 1_000_000:06d}"
    response = client.post(reverse("mfa_activate_totp"), {"code": wrong})

    # Then the form says so and no authenticator exists
    assert response.status_code == 200
    assert "Incorrect code." in response.content.decode()
    assert not Authenticator.objects.filter(user=user).exists()

    # And with the right code it activates TOTP and recovery codes
    response = client.post(reverse("mfa_activate_totp"), {"code": totp_code(secret)})
    assert response.status_code == 302
    assert set(Authenticator.objects.filter(user=user).values_list("type", flat=True)) == {
        Authenticator.Type.TOTP,
        Authenticator.Type.RECOVERY_CODES,
    }


def test_counts_unchanged_by_failed_logins(client):
    UserFactory(email="ivan@example.com")
    before = (User.objects.count(), EmailAddress.objects.count())

    _login(client, "ivan@example.com", "nope-nope-nope")
    _login(client, "new@example.com", "nope-nope-nope")

    assert (User.objects.count(), EmailAddress.objects.count()) == before
