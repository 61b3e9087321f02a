"""Defect 10 of issue 15: the back office shows and takes money in the currency's units,
the issuance review page shows the offering terms under one heading, a view-only KYC
page offers no "Add another", and every page has a favicon."""

import re

import pytest
from django.contrib import admin
from django.contrib.auth.models import Permission
from django.test import RequestFactory
from django.urls import reverse

from accounts.tests.factories import UserFactory
from assets.tests.factories import AssetFactory
from compliance.tests.factories import KycApplicationFactory, add_document
from config.admin_money import MajorUnitsField, MoneyAdminMixin
from marketplace.models import JournalEntry, LedgerAccount
from marketplace.tests.factories import OfferingFactory, StaffFactory, verified_investor

pytestmark = pytest.mark.django_db

RAW_MINOR = re.compile(r"\b[Mm]inor\b")


@pytest.fixture
def staff_client(client):
    client.force_login(StaffFactory())
    return client


def _text(response) -> str:
    assert response.status_code == 200
    return response.content.decode()


def test_the_asset_page_shows_money_in_the_currencys_units(staff_client):
    asset = AssetFactory(valuation_minor=240_000_000, price_per_fraction_minor=25_050, currency="EUR")
    page = _text(staff_client.get(reverse("admin:assets_asset_change", args=[asset.pk])))
    assert "2,400,000.00 EUR" in page and "250.50 EUR" in page
    assert "240000000" not in page and "Valuation minor" not in page and "minor:" not in page


def test_offering_price_is_edited_in_major_units(staff_client):
    offering = OfferingFactory(price_per_fraction_minor=12_345)
    page = _text(staff_client.get(reverse("admin:marketplace_offering_change", args=[offering.pk])))
    assert 'value="123.45"' in page and "12345" not in page
    list_page = _text(staff_client.get(reverse("admin:marketplace_offering_changelist")))
    assert "123.45 EUR" in list_page


def test_major_units_field_converts_exactly():
    field = MajorUnitsField(field_label="price")
    assert field.clean("1,250.05") == 125_005
    assert field.clean("0.10") == 10  # no float rounding anywhere
    assert field.prepare_value(125_005) == "1250.05"
    assert not field.has_changed(125_005, "1250.05") and field.has_changed(125_005, "1250.06")
    with pytest.raises(Exception, match="two decimal places"):
        field.clean("1.005")


def test_ledger_pages_show_balances_and_postings_in_units(staff_client):
    from marketplace.services import deposit_record

    investor = verified_investor()
    staff = StaffFactory()
    deposit_record(investor=investor, amount_minor=123_456, currency="EUR", bank_reference="R-1", actor=staff)
    account = LedgerAccount.objects.get(user=investor, kind="investor_available")
    page = _text(staff_client.get(reverse("admin:marketplace_ledgeraccount_change", args=[account.pk])))
    assert "1,234.56 EUR" in page and "123456" not in page
    entry = JournalEntry.objects.latest("pk")
    page = _text(staff_client.get(reverse("admin:marketplace_journalentry_change", args=[entry.pk])))
    assert "1,234.56 EUR" in page and "123456" not in page and not RAW_MINOR.search(page)


def test_every_admin_that_shows_a_minor_field_converts_it():
    """Any admin (or inline) listing a *_minor field must use MoneyAdminMixin."""
    request = RequestFactory().get("/")
    request.user = StaffFactory()
    offenders = []
    for model, model_admin in admin.site._registry.items():
        admins = [model_admin, *(inline(model, admin.site) for inline in model_admin.inlines)]
        for each in admins:
            names = [*(each.fields or ()), *(each.readonly_fields or ()), *getattr(each, "list_display", ())]
            for _, opts in each.fieldsets or ():
                names += list(opts["fields"])
            shown = {n for n in names if isinstance(n, str) and n.endswith("_minor")}
            if shown and not isinstance(each, MoneyAdminMixin):
                offenders.append(f"{type(each).__name__}: {sorted(shown)}")
    assert not offenders


def test_the_review_page_shows_the_offering_terms_under_one_heading(staff_client):
    asset = AssetFactory(fractions_for_sale=8_000, min_purchase=5, max_purchase=250, status="submitted")
    page = _text(staff_client.get(reverse("admin:assets_asset_review", args=[asset.pk])))
    body = page[page.index("<body") :]
    assert body.count("<h1") == 1 and body.count(f"Review {asset.name}") == 1
    terms = page[page.index('id="offering-terms"') :]
    for text in ("Fractions offered", "8,000 of 10,000", "Minimum per purchase", "Maximum per purchase", "250"):
        assert text in terms
    assert "Sale opens" in terms and "Sale closes" in terms


def test_a_view_only_kyc_page_offers_no_add_another(client):
    app = KycApplicationFactory(submitted=True)
    add_document(app)
    viewer = UserFactory(is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_kycapplication"))
    client.force_login(viewer)
    page = _text(client.get(reverse("admin:compliance_kycapplication_change", args=[app.pk])))
    # Django's inline script shows its "Add another" link only while MAX_NUM_FORMS exceeds
    # TOTAL_FORMS, and the server renders an empty form to copy only with add permission.
    assert 'name="documents-MAX_NUM_FORMS" value="0"' in page
    assert 'id="documents-empty"' not in page and "empty-form" not in page
    inline = next(i for i in admin.site._registry[type(app)].get_inline_instances(_request(viewer), app))
    assert not inline.has_add_permission(_request(viewer), app)


def _request(user):
    request = RequestFactory().get("/")
    request.user = user
    return request


@pytest.mark.parametrize("name, staff", [("home", False), ("account_login", False), ("admin:index", True)])
def test_every_page_names_the_favicon(client, name, staff):
    if staff:
        client.force_login(StaffFactory())
    page = _text(client.get(reverse(name)))
    assert re.search(r'<link rel="icon" href="[^"]*favicon\.svg"', page)


def test_favicon_ico_is_not_a_404(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 301 and response["Location"].endswith("favicon.svg")
