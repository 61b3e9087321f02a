"""Issuance in a real browser, settled on a real devnet by a real Celery worker:
an issuer registers an asset and uploads documents, an admin approves it in Django
admin, the asset goes live with its asset id, and the verify panel says it matches."""

import re
import time

import pytest

from accounts.roles import ADMIN, INVESTOR, ISSUER
from accounts.tests.factories import UserFactory
from assets.demo_documents import pdf_document, png_picture
from assets.models import Asset
from tests.e2e.flows import sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def _sign_out(page):
    page.goto("/")
    page.get_by_role("button", name="Sign out").click()
    page.get_by_role("link", name="Sign in").wait_for()


def _upload(page, kind, title, name, mime, content):
    page.get_by_label("Kind").select_option(kind)
    page.get_by_label("Title").fill(title)
    page.get_by_label("File").set_input_files({"name": name, "mimeType": mime, "buffer": content})
    page.get_by_role("button", name="Upload").click()
    page.locator("#dataroom").get_by_role("link", name=f"Download {title}").wait_for()


def test_issuer_submits_admin_approves_asset_goes_live_and_verifies(
    page, page_problems, live_server, settings, chain_platform, celery_worker_process
):
    settings.PUBLIC_BASE_URL = live_server.url
    issuer = UserFactory(email="iris@example.com", full_name="Iris Issuer", roles=[INVESTOR, ISSUER])
    UserFactory(email="ada@example.com", roles=[ADMIN], is_staff=True)

    # The issuer registers the asset
    sign_in(page, issuer.email)
    page.get_by_role("link", name="Your assets").click()
    page.get_by_role("button", name="Register a new asset").click()
    fields = {
        "Name": "Canal House Amsterdam",
        "Description": "A listed 17th-century canal house, fully let.",
        "Location": "Amsterdam, NL",
        "Valuation": "3200000.00",
        "Number of fractions": "32000",
        "Unit name (ticker)": "CANAL",
        "Token name": "Canal House Amsterdam",
        "Price per fraction": "100.00",
        "Fractions offered": "20000",
    }
    page.get_by_label("Category").select_option("real_estate")
    for label, value in fields.items():
        page.get_by_label(label, exact=True).fill(value)
    page.get_by_label("Valuation date").fill("2026-09-30")
    page.get_by_label("Currency").select_option("EUR")
    page.get_by_role("button", name="Save draft").click()
    page.get_by_text("No documents yet.").wait_for()

    # ... uploads documents (HTMX) and submits
    _upload(
        page,
        "appraisal",
        "Appraisal 2026",
        "appraisal.pdf",
        "application/pdf",
        pdf_document("Appraisal", ["Valuation 3,200,000 EUR"]),
    )
    _upload(page, "photo", "Front view", "front.png", "image/png", png_picture(80, 50, (90, 120, 200), (220, 230, 250)))
    page.get_by_role("button", name="Submit for review").click()
    page.get_by_text("Submitted for review").first.wait_for()
    asset = Asset.objects.get(name="Canal House Amsterdam")
    assert asset.status == "submitted" and asset.documents.count() == 2
    _sign_out(page)

    # An admin approves it in Django admin
    sign_in(page, "ada@example.com")
    page.goto(f"/backoffice/assets/asset/{asset.pk}/change/")
    page.get_by_role("link", name="Review this issuance").click()
    page.get_by_role("button", name="Approve and mint").click()
    page.get_by_text("Decision recorded").wait_for()

    # The worker mints the ASA on devnet through the outbox
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        asset.refresh_from_db()
        if asset.status in ("live", "failed"):
            break
        time.sleep(0.5)
    assert asset.status == "live", (asset.status, asset.failure_reason, celery_worker_process.log()[-3000:])
    from chain.gateway import asset_params

    params = asset_params(asset.asa_id)
    assert params.creator == chain_platform["treasury"].address
    assert (params.total, params.decimals, params.default_frozen) == (32000, 0, True)
    assert params.clawback == chain_platform["clawback"].address
    assert params.url.endswith("#arc3")

    # The public page shows the asset id from devnet, and the verify panel says it matches
    _sign_out(page)
    page.goto(f"/assets/{asset.public_id}/")
    assert page.locator("#asa-id").inner_text() == str(asset.asa_id)
    page.get_by_role("button", name="Verify against the chain").click()
    page.get_by_text("Documents match the chain.").wait_for()
    assert "✘" not in page.locator("#verify-result").inner_text()
    assert re.search(asset.metadata_hash, page.locator("#verify-result").inner_text())
    page_problems.assert_clean()
