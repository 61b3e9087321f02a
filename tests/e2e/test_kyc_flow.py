"""KYC in a real browser: an investor submits details and documents, a compliance officer
approves in the back office, the dashboard shows the investor verified with a custodial
address; a sanctioned name is flagged and one person cannot approve it alone."""

import re
from pathlib import Path

import pytest

from accounts.tests.factories import DEFAULT_PASSWORD, UserFactory
from compliance.models import KycApplication
from compliance.tests.factories import PDF_BYTES, PNG_BYTES, KycApplicationFactory, OfficerFactory, add_documents
from tests.e2e.flows import sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

DATA = Path(__file__).resolve().parents[2] / "compliance" / "data"


@pytest.fixture(autouse=True)
def _private_storage_and_sanctions(settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": tmp_path / "private"},
        },
    }
    from compliance.screening import sdn_csv_parse
    from compliance.services import sanctions_list_replace

    sanctions_list_replace(entries=sdn_csv_parse((DATA / "sdn_sample.csv").read_text()))


def _sign_in_back_office(page, email):
    # The back office's sign-in is the site's one login page (second factor, rate limit).
    page.goto("/backoffice/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(DEFAULT_PASSWORD)
    page.get_by_role("button", name="Sign In").click()
    page.get_by_role("heading", name="Operations").wait_for()


def _open_application(page, legal_name):
    page.goto("/backoffice/compliance/kycapplication/?queue=waiting")
    page.get_by_role("link", name=legal_name).click()
    page.locator("#kyc-decision").wait_for()


def test_investor_submits_officer_approves_dashboard_shows_verified(page, page_problems, browser, live_server):
    investor = UserFactory(email="nina@example.com")
    OfficerFactory(email="officer@example.com")

    # The investor fills in the KYC form with two documents and submits it.
    sign_in(page, investor.email)
    page.get_by_role("link", name="Dashboard", exact=True).click()
    assert page.locator("[data-kyc-state]").inner_text() == "Not verified"
    # Browsing needs no KYC: a working link, with what buying needs below it
    assert page.get_by_role("button", name="Browse offerings").is_enabled()
    assert page.get_by_role("button", name="Browse offerings").get_attribute("href") == "/assets/"
    assert "Verify your identity (KYC) before buying." in page.locator("#why-buy").inner_text()
    page.get_by_role("button", name="Start verification").click()
    page.get_by_label("Full legal name").fill("Nina Hartmann")
    page.get_by_label("Date of birth").fill("1988-04-12")
    page.get_by_label("Nationality").select_option("DE")
    page.get_by_label("Country of residence").select_option("DE")
    page.get_by_label("Address", exact=True).fill("Hauptstrasse 5, 10115 Berlin")
    page.get_by_label("Investor category", exact=True).select_option("accredited")
    page.get_by_label(re.compile("I certify")).check()
    page.get_by_label(re.compile("Identity document")).set_input_files(
        {"name": "passport.pdf", "mimeType": "application/pdf", "buffer": PDF_BYTES}
    )
    page.get_by_label(re.compile("Proof of address")).set_input_files(
        {"name": "bill.png", "mimeType": "image/png", "buffer": PNG_BYTES}
    )
    page.get_by_role("button", name="Submit for review").click()
    page.get_by_text("submitted for review").wait_for()
    assert "being reviewed" in page.locator("#next-step").inner_text()
    page_problems.assert_clean()

    # The compliance officer approves it in the back office.
    officer_context = browser.new_context(base_url=live_server.url)
    officer_page = officer_context.new_page()
    _sign_in_back_office(officer_page, "officer@example.com")
    _open_application(officer_page, "Nina Hartmann")
    assert officer_page.get_by_role("link", name="passport.pdf").is_visible()
    assert officer_page.get_by_role("link", name="bill.png").is_visible()
    officer_page.get_by_role("button", name="Approve").click()
    officer_page.get_by_text("was approved").wait_for()
    officer_context.close()

    # The investor's dashboard now says verified and shows the custodial address.
    page.goto("/market/dashboard/")
    assert page.locator("[data-kyc-state]").inner_text() == "Verified"
    address = page.locator("#custodial-address").inner_text()
    assert re.fullmatch(r"[A-Z2-7]{58}", address), address
    assert page.get_by_role("button", name="Browse offerings").is_enabled()
    page_problems.assert_clean()


def test_sanctioned_name_is_flagged_and_needs_two_people(page, browser, live_server):
    from compliance.services import kyc_application_submit

    applicant = KycApplicationFactory(legal_name="Viktor Drakov")
    add_documents(applicant)
    kyc_application_submit(application=applicant, user=applicant.user)
    OfficerFactory(email="first@example.com")
    OfficerFactory(email="second@example.com")

    # The first officer sees the match and gives the first approval, and cannot give the second.
    _sign_in_back_office(page, "first@example.com")
    page.goto("/backoffice/compliance/kycapplication/?queue=flagged")
    assert page.get_by_text("MATCH").first.is_visible()
    _open_application(page, "Viktor Drakov")
    assert "DRAKOV, Viktor Ivanovich" in page.locator("body").inner_text()
    assert page.locator("#screening-flag").is_visible()
    page.get_by_label(re.compile("Reason")).fill("Date of birth differs from the listed person")
    page.get_by_role("button", name="Give first approval").click()
    page.get_by_text("First approval recorded").wait_for()
    page.get_by_label(re.compile("Reason")).fill("Approving again")
    page.get_by_role("button", name="Give second approval").click()
    page.get_by_text("a second, different staff member must give the final approval").wait_for()
    applicant.refresh_from_db()
    assert applicant.status == KycApplication.Status.SUBMITTED

    # A different officer gives the second approval.
    other = browser.new_context(base_url=live_server.url)
    second_page = other.new_page()
    _sign_in_back_office(second_page, "second@example.com")
    _open_application(second_page, "Viktor Drakov")
    second_page.get_by_label(re.compile("Reason")).fill("Agree: different person")
    second_page.get_by_role("button", name="Give second approval").click()
    second_page.get_by_text("was approved").wait_for()
    other.close()
    applicant.refresh_from_db()
    assert applicant.status == KycApplication.Status.APPROVED
