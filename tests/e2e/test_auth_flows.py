"""The sign-up to two-factor journey and the sign-in rate limit, in a real browser."""

import re

import pytest
from django.core import mail

from accounts.tests.factories import DEFAULT_PASSWORD, UserFactory
from accounts.tests.totp import fresh_totp_code
from tests.e2e.flows import sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

EMAIL = "erin@example.com"


def test_signup_verify_enable_totp_and_sign_in_with_a_code(page, page_problems):
    # Sign up
    page.goto("/")
    page.get_by_role("button", name="Create account").click()
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password", exact=True).fill(DEFAULT_PASSWORD)
    page.get_by_label("Password (again)").fill(DEFAULT_PASSWORD)
    page.get_by_role("button", name="Sign Up").click()
    page.get_by_role("heading", name="Verify Your Email Address").wait_for()

    # Open the link from the mail and confirm
    assert [m.to for m in mail.outbox] == [[EMAIL]]
    link = re.search(r"https?://\S+/accounts/confirm-email/\S+/", mail.outbox[0].body).group(0)
    page.goto(link)
    page.get_by_role("button", name="Confirm").click()

    # Sign in with the password
    sign_in(page, EMAIL, DEFAULT_PASSWORD, expect_profile=False)
    page.get_by_role("heading", name="Your profile").wait_for()
    assert page.get_by_text("Off", exact=True).is_visible()

    # Enable TOTP: allauth asks for the password again first
    page.get_by_role("link", name=re.compile("Two-factor authentication")).click()
    page.get_by_role("button", name="Activate").click()
    if "/reauthenticate/" in page.url:
        page.get_by_label("Password").fill(DEFAULT_PASSWORD)
        page.get_by_role("button", name="Confirm").click()
    secret = page.locator("#authenticator_secret").input_value()
    assert re.fullmatch(r"[A-Z2-7]{32}", secret), secret
    used_steps: set[int] = set()
    page.get_by_label("Authenticator code").fill(fresh_totp_code(secret, used_counters=used_steps))
    page.get_by_role("button", name="Activate").click()

    # Recovery codes exist
    page.goto("/accounts/2fa/")
    page.get_by_role("button", name="View").click()
    codes = page.locator("#recovery_codes").input_value().split()
    assert len(codes) == 10
    page_problems.assert_clean()

    # Sign out, then sign in again: password, then a fresh code
    page.goto("/me/profile/")
    page.get_by_role("button", name="Sign out").click()
    page.get_by_role("link", name="Sign in").wait_for()
    sign_in(page, EMAIL, DEFAULT_PASSWORD, expect_profile=False)
    page.get_by_role("heading", name="Two-Factor Authentication").wait_for()
    assert "/accounts/2fa/authenticate/" in page.url
    page.get_by_label("Code").fill(fresh_totp_code(secret, used_counters=used_steps))
    page.get_by_role("button", name="Sign In").click()

    page.get_by_role("heading", name="Your profile").wait_for()
    assert page.get_by_text("Authenticator app on").is_visible()
    assert page.get_by_text(EMAIL).first.is_visible()
    page_problems.assert_clean()


def test_repeated_wrong_passwords_pause_sign_in_even_for_the_right_one(page, page_problems):
    UserFactory(email=EMAIL)

    for attempt in range(5):
        sign_in(page, EMAIL, f"wrong-password-{attempt}", expect_profile=False)
        page.get_by_text("The email address and/or password you specified are not correct.").wait_for()

    sign_in(page, EMAIL, DEFAULT_PASSWORD, expect_profile=False)

    page.get_by_text("Too many failed sign-in attempts").wait_for()
    assert "/accounts/login/" in page.url
    page.goto("/me/profile/")
    assert "/accounts/login/" in page.url  # still signed out
    page_problems.assert_clean()


def test_the_browser_enforces_our_csp_and_the_suite_would_notice(page, page_problems):
    # Given a page of ours with no violations of its own
    page.goto("/accounts/login/")
    assert page_problems.csp_violations == []

    # When something injects an inline script (what an XSS would do)
    page.evaluate(
        """() => { const s = document.createElement("script");
                   s.textContent = "window.__injected = true;";
                   document.head.appendChild(s); }"""
    )

    # Then Chromium refuses to run it and the violation is recorded
    page.wait_for_timeout(200)
    assert page.evaluate("window.__injected === undefined")
    assert page_problems.csp_violations, page_problems.console_errors
