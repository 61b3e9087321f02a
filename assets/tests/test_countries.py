"""Defect 3 of issue 15: the asset's country is a real ISO 3166-1 field (django-countries),
the allow-list of investor countries takes only ISO codes, an offering closing in the past
is refused, and the migration keeps every stored value."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.urls import reverse
from django.utils import timezone

from accounts.roles import ADMIN
from accounts.tests.factories import UserFactory
from assets import services
from assets.models import Asset
from assets.tests.factories import AssetFactory, make_document
from assets.tests.test_forms import VALID, issuer_client  # noqa: F401  (fixture)

pytestmark = pytest.mark.django_db


def _errors(response) -> str:
    return response.content.decode()


def test_a_country_name_is_not_cut_to_two_letters(issuer_client):  # noqa: F811
    # "Netherlands" used to be stored as NE (Niger) without a word.
    response = issuer_client.post(reverse("assets:create"), {**VALID, "country": "Netherlands"})
    assert response.status_code in (200, 422)
    assert "Select a valid choice" in _errors(response)
    assert not Asset.objects.exists()


def test_the_issuer_picks_an_iso_country(issuer_client):  # noqa: F811
    page = issuer_client.get(reverse("assets:create")).content.decode()
    assert '<option value="NL">Netherlands</option>' in page
    assert issuer_client.post(reverse("assets:create"), {**VALID, "country": "NL"}).status_code == 302
    asset = Asset.objects.get()
    assert asset.country.code == "NL" and asset.country.name == "Netherlands"


def test_a_closing_date_in_the_past_is_refused(issuer_client):  # noqa: F811
    past = (timezone.now() - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    response = issuer_client.post(reverse("assets:create"), {**VALID, "offering_closes_at": past})
    assert "The closing date is in the past" in _errors(response)
    assert not Asset.objects.exists()
    future = (timezone.now() + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M")
    assert issuer_client.post(reverse("assets:create"), {**VALID, "offering_closes_at": future}).status_code == 302


def test_an_asset_whose_closing_date_passed_cannot_be_submitted():
    asset = AssetFactory(offering_closes_at=timezone.now() - timedelta(hours=1))
    make_document(asset)
    with pytest.raises(ValidationError, match="closing date has passed"):
        services.asset_submit(asset=asset, actor=asset.issuer)


def test_the_allow_list_takes_only_iso_codes():
    asset = AssetFactory(allowed_countries=["NL", "XX"])
    with pytest.raises(ValidationError, match="XX"):
        asset.full_clean()
    asset.allowed_countries = ["NL", "DE"]
    asset.full_clean()


def test_staff_pick_allowed_countries_from_the_iso_list(client):
    staff = UserFactory(roles=[ADMIN], is_staff=True, is_superuser=True)
    asset = AssetFactory()
    client.force_login(staff)
    url = reverse("admin:assets_asset_change", args=[asset.pk])
    page = client.get(url).content.decode()
    assert 'name="allowed_countries"' in page and '<option value="DE">Germany</option>' in page
    data = {
        "allowed_countries": ["DE", "FR"],
        "min_holding": "0",
        "lockup_days": "0",
        "documents-TOTAL_FORMS": "0",
        "documents-INITIAL_FORMS": "0",
    }
    response = client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    asset.refresh_from_db()
    assert asset.allowed_countries == ["DE", "FR"]
    response = client.post(url, {**data, "allowed_countries": ["Germany"]})
    assert response.status_code == 200 and "Select a valid choice" in response.content.decode()


@pytest.mark.django_db(transaction=True)
def test_the_migration_keeps_existing_codes_and_reports_unknown_ones(capsys):
    executor = MigrationExecutor(connection)
    before, after = [("assets", "0002_currency_choices")], [("assets", "0003_iso_countries")]
    executor.migrate(before)
    try:
        old = executor.loader.project_state(before).apps
        Old = old.get_model("assets", "Asset")
        User = old.get_model("accounts", "User")
        issuer = User.objects.create(email="old-issuer@example.com", password="!")
        common = dict(
            issuer=issuer,
            category="real_estate",
            description="d",
            location="Somewhere",
            valuation_minor=100,
            valuation_date="2026-01-01",
            currency="EUR",
            total_fractions=10,
            price_per_fraction_minor=10,
            fractions_for_sale=5,
        )
        good = Old.objects.create(name="Good", country="nl", allowed_countries=["fr", "DE"], unit_name="A", **common)
        bad = Old.objects.create(name="Bad", country="QQ", allowed_countries=["ZZ", "GB"], unit_name="B", **common)
        executor = MigrationExecutor(connection)
        executor.migrate(after)
        new = executor.loader.project_state(after).apps.get_model("assets", "Asset")
        good, bad = new.objects.get(pk=good.pk), new.objects.get(pk=bad.pk)
        assert (str(good.country), good.allowed_countries) == ("NL", ["FR", "DE"])
        # Not ISO codes: kept exactly as they were, and said so.
        assert (str(bad.country), bad.allowed_countries) == ("QQ", ["ZZ", "GB"])
        out = capsys.readouterr().out
        assert "country 'QQ'" in out and "allowed country 'ZZ'" in out and "'GB'" not in out
    finally:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes())
