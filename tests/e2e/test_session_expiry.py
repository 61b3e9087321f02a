"""The session ends while the offering page is open (issue 15, defect 1): clicking Buy
sends the browser to the sign-in page (not a sign-in form inside the purchase panel), and
signing in there brings the investor back to the offering page (not a 405 on the
POST-only order URL)."""

import re

import pytest

from accounts.tests.factories import DEFAULT_PASSWORD
from marketplace.models import PrimaryOrder
from marketplace.tests.factories import OfferingFactory, verified_investor
from tests.e2e.flows import sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_buy_after_the_session_expired_signs_in_and_returns_to_the_offering(page, page_problems):
    offering = OfferingFactory(asset__name="Canal House")
    investor = verified_investor(email="sam@example.com")
    sign_in(page, investor.email)
    offering_path = f"/market/offerings/{offering.asset.public_id}/"
    page.goto(offering_path)
    page.get_by_role("heading", name="Buy fractions of Canal House").wait_for()

    # The session ends (expiry, sign-out in another tab): the browser loses its session cookie
    context = page.context
    assert any(c["name"] == "sessionid" for c in context.cookies())
    context.clear_cookies(name="sessionid")

    page.get_by_label("Number of fractions").fill("2")
    page.get_by_role("button", name="Buy fractions").click()

    # The whole page goes to sign-in, with the offering as `next`
    page.wait_for_url(re.compile(r"/accounts/login/\?next="))
    assert page.locator("#purchase").count() == 0
    page.get_by_label("Email").fill(investor.email)
    page.get_by_label("Password").fill(DEFAULT_PASSWORD)
    page.get_by_role("button", name="Sign In").click()

    # ... and back on the offering page, not an error
    page.wait_for_url(re.compile(re.escape(offering_path) + r"$"))
    page.get_by_role("heading", name="Buy fractions of Canal House").wait_for()
    assert page.get_by_role("button", name="Buy fractions").is_visible()
    assert not PrimaryOrder.objects.exists()
    page_problems.assert_clean()
