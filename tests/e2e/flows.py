"""Steps several browser scenarios share."""

from accounts.tests.factories import DEFAULT_PASSWORD


def sign_in(page, email, password=DEFAULT_PASSWORD, *, expect_profile=True):
    page.goto("/accounts/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign In").click()
    if expect_profile:
        page.get_by_role("heading", name="Your profile").wait_for()
