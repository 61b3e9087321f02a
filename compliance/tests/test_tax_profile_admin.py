"""The back office of tax profiles: compliance sets the tax residence, the treaty form and
a rate that overrides the default (typed in %, shown beside the default that would
apply); every save is audited; nobody sets their own; hostile rates are refused."""

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from accounts.tests.factories import UserFactory
from compliance.admin import parse_rate_percent
from compliance.models import AuditEntry, TaxProfile
from compliance.withholding import withholding_rates_for_many

from .factories import OfficerFactory

pytestmark = pytest.mark.django_db

ADD = reverse("admin:compliance_taxprofile_add")


def tax_officer():
    officer = OfficerFactory()
    officer.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="compliance",
            codename__in=["add_taxprofile", "change_taxprofile", "view_taxprofile"],
        )
    )
    return officer


def change_url(profile) -> str:
    return reverse("admin:compliance_taxprofile_change", args=[profile.pk])


def test_officer_creates_a_profile_with_the_default_rate_then_overrides_it(client):
    investor, officer = UserFactory(), tax_officer()
    client.force_login(officer)
    assert client.get(ADD).status_code == 200
    data = {"user": investor.pk, "tax_residence": "DE", "treaty_form_on_file": "on", "withholding_rate": ""}
    assert client.post(ADD, data).status_code == 302
    profile = TaxProfile.objects.get(user=investor)
    assert (str(profile.tax_residence), profile.treaty_form_on_file, profile.withholding_rate_bps) == ("DE", True, None)
    assert profile.updated_by == officer
    page = client.get(change_url(profile)).content.decode()
    assert "15.00 % (default for DE with a treaty form)" in page
    assert withholding_rates_for_many([investor.pk])[investor.pk].rate_bps == 1500

    response = client.post(change_url(profile), {"tax_residence": "DE", "withholding_rate": "12.5"})
    assert response.status_code == 302
    profile.refresh_from_db()
    assert profile.withholding_rate_bps == 1250 and not profile.treaty_form_on_file
    assert withholding_rates_for_many([investor.pk])[investor.pk].source == "set by compliance"
    page = client.get(change_url(profile)).content.decode()
    assert 'value="12.50"' in page and "26.38 % (default for DE)" in page and "12.50 % (set by compliance)" in page

    created, changed = AuditEntry.objects.filter(action__startswith="tax_profile.").order_by("seq")
    assert created.action == "tax_profile.created" and created.actor == officer
    assert changed.before == {"tax_residence": "DE", "treaty_form_on_file": True, "withholding_rate_bps": None}
    assert changed.after == {"tax_residence": "DE", "treaty_form_on_file": False, "withholding_rate_bps": 1250}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("101", "more than 100 %"),
        ("１５", "Use the digits 0-9."),
        ("1e3", "in percent"),
        ("-5", "in percent"),
        ("12.345", "in percent"),
        ("NaN", "in percent"),
        ("9" * 10_000, "at most 8 characters"),
        ("1\x00", "Null characters"),
    ],
)
def test_hostile_rates_are_refused_with_a_message(client, raw, message):
    investor = UserFactory()
    client.force_login(tax_officer())
    response = client.post(ADD, {"user": investor.pk, "tax_residence": "FR", "withholding_rate": raw})
    assert response.status_code == 200
    assert message in response.content.decode().replace("&#x27;", "'")
    assert not TaxProfile.objects.exists()


def test_percent_parser():
    assert parse_rate_percent("") is None
    assert parse_rate_percent(" 26.38 % ") == 2638
    assert parse_rate_percent("0") == 0
    assert parse_rate_percent("100") == 10_000


def test_nobody_sets_their_own_tax_profile(client):
    officer = tax_officer()
    client.force_login(officer)
    response = client.post(ADD, {"user": officer.pk, "tax_residence": "SG", "withholding_rate": "0"})
    assert "Nobody sets their own tax profile" in response.content.decode()
    assert not TaxProfile.objects.exists()
    colleague = tax_officer()
    profile = TaxProfile.objects.create(user=officer, tax_residence="FR")
    response = client.post(change_url(profile), {"tax_residence": "SG", "withholding_rate": "0"})
    assert "Nobody sets their own tax profile" in response.content.decode()
    profile.refresh_from_db()
    assert (str(profile.tax_residence), profile.withholding_rate_bps) == ("FR", None)
    client.force_login(colleague)
    assert client.post(change_url(profile), {"tax_residence": "SG", "withholding_rate": ""}).status_code == 302


def test_staff_without_the_permission_and_csrf(client):
    investor = UserFactory()
    client.force_login(UserFactory(is_staff=True))  # staff, but no role grants tax profiles
    assert client.get(ADD).status_code == 403
    assert client.post(ADD, {"user": investor.pk, "tax_residence": "FR"}).status_code == 403
    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(tax_officer())
    assert csrf_client.post(ADD, {"user": investor.pk, "tax_residence": "FR"}).status_code == 403
    assert not TaxProfile.objects.exists()


def test_profiles_cannot_be_deleted(client):
    profile = TaxProfile.objects.create(user=UserFactory(), tax_residence="FR")
    client.force_login(tax_officer())
    delete = reverse("admin:compliance_taxprofile_delete", args=[profile.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 403
    assert TaxProfile.objects.filter(pk=profile.pk).exists()
