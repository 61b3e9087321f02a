"""The pages of income distributions: the investor's (upcoming, received, held with the
reason and what to do, tax), the asset page's section (public statuses only), the
issuer's declaration page (object-level permission, every refusal a 4xx with its
message), and the back office (four eyes, fund, pay now, release a held payment)."""

import datetime
import uuid
from decimal import Decimal

import pytest
from django.contrib.auth.models import AnonymousUser, Permission
from django.db import connection
from django.template import Context, Template
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.tests.factories import UserFactory
from assets.tests.factories import IssuerFactory
from compliance.models import KycApplication, TaxProfile
from marketplace import distributions as dist
from marketplace.distribution_selectors import per_fraction_major, yield_pct
from marketplace.models import Distribution, DistributionPayment, Holding, Market

from .factories import OfferingFactory, StaffFactory, verified_investor
from .test_distributions import buy, declare, ready

pytestmark = pytest.mark.django_db

P = DistributionPayment.Status
TODAY = timezone.localdate()
PAGE = reverse("marketplace:distributions")


@pytest.fixture
def approver(db):
    return StaffFactory()


@pytest.fixture
def payer(db):
    return StaffFactory()


@pytest.fixture
def asset(platform_accounts):
    return OfferingFactory(asset__issuer=IssuerFactory()).asset


def text(response) -> str:
    return response.content.decode().replace("&#x27;", "'").replace("&amp;", "&")


def declare_page(asset) -> str:
    return reverse("marketplace:distribution_declare", args=[asset.public_id])


def upcoming(asset, approver, *, gross=1_234_567, days=3):
    """Approved, record date and payment in the future."""
    d = declare(
        asset,
        asset.issuer,
        gross=gross,
        record_at=timezone.now() + datetime.timedelta(days=days - 1),
        payment_date=TODAY + datetime.timedelta(days=days),
    )
    return dist.distribution_approve(distribution=d, actor=approver)


# figures ----------------------------------------------------------------------------------


def test_per_fraction_and_yield_are_integer_arithmetic():
    assert per_fraction_major(1_234_567, 10_000) == Decimal("1.2346")
    assert per_fraction_major(1, 3) == Decimal("0.0033")  # a third of a cent
    # 1.234567 per 100.00: 1.23 % for the period; over 31 days, 1.234567 × 365 / 31 = 14.54 % a year.
    assert yield_pct(1_234_567, 10_000, 10_000) == Decimal("1.23")
    assert yield_pct(1_234_567, 10_000, 10_000, days=31) == Decimal("14.54")
    assert yield_pct(1_234_567, 10_000, None) is None
    assert yield_pct(2**63 - 1, 1, 1, days=1) > 0  # the largest amount does not overflow


# the investor's page ------------------------------------------------------------------------


def test_investor_sees_upcoming_received_and_a_held_payment_with_what_to_do(client, offering, fund, approver, payer):
    asset = offering.asset
    paid_investor, lapsed = verified_investor(), verified_investor()
    TaxProfile.objects.create(user=paid_investor, tax_residence="DE", treaty_form_on_file=True)
    buy(paid_investor, offering, 100, fund)
    buy(lapsed, offering, 25, fund)
    KycApplication.objects.filter(user=lapsed).update(expires_at=TODAY - datetime.timedelta(days=1))
    d = ready(declare(asset, asset.issuer, gross=1_000_000), approver, payer)
    dist.distribution_pay(distribution=d, actor=payer)
    coming = upcoming(asset, approver)
    Market.objects.create(asset=asset, currency="EUR", last_price_minor=12_500)

    client.force_login(paid_investor)
    page = text(client.get(PAGE))
    # Received: 100 of 10,000 fractions of 10,000.00 EUR → 100.00 gross, 15 % withheld (DE, treaty form).
    assert 'data-status="paid"' in page
    assert "100.00 EUR" in page and "15.00 EUR" in page and "85.00 EUR" in page and "(15.00%)" in page
    assert "1.0000 EUR" in page  # per fraction
    assert "1.00 %" in page  # of the offering price, 100.00 EUR
    assert "0.80 %" in page  # of the last trade, 125.00 EUR
    # Upcoming: 100 units today; 12,345.67 EUR over 10,000 fractions is 1.2346 per fraction.
    assert f'data-asset="{asset.unit_name}"' in page and "1.2346 EUR" in page
    assert coming.record_at.strftime("%-d %b %Y") in page
    assert "123.45 EUR" in page  # 100 × 1.234567, rounded down
    # The tax profile, read-only.
    assert "Germany" in page and "treaty form on file" in page and "contact support" in page

    client.force_login(lapsed)
    page = text(client.get(PAGE))
    assert 'data-status="held"' in page and ">Held<" in page
    assert "the payment is held until you renew it" in page
    assert "Renew your verification" in page and reverse("compliance:kyc_edit") in page


def test_another_investor_never_sees_someone_elses_payments(client, offering, fund, approver, payer):
    asset = offering.asset
    a, b = verified_investor(), verified_investor()
    buy(a, offering, 40, fund)
    d = ready(declare(asset, asset.issuer, gross=777_700), approver, payer)
    dist.distribution_pay(distribution=d, actor=payer)
    upcoming(asset, approver)
    client.force_login(b)
    page = text(client.get(PAGE))
    assert asset.name not in page and 'data-status="paid"' not in page
    assert "Nothing received yet" in page and "No distribution of an asset you hold" in page
    # The issuer's treasury share is not an investor's payment either.
    client.force_login(asset.issuer)
    assert asset.name not in text(client.get(PAGE))


def test_the_page_needs_a_login_and_reads_any_page_number(client, investor):
    assert client.get(PAGE).status_code == 302
    client.force_login(investor)
    for raw in ("", "2", "abc", "１", "9" * 400, "-1"):
        assert client.get(PAGE, {"page": raw}).status_code == 200


def _rows(investor, staff, n):
    """n assets, each with a holding of the investor, an upcoming distribution and a paid
    payment (written directly: the engine's paying is tested elsewhere)."""
    for _ in range(n):
        asset = OfferingFactory().asset
        Holding.objects.create(investor=investor, asset=asset, quantity=10)
        Market.objects.create(asset=asset, currency="EUR", last_price_minor=11_000)
        upcoming(asset, staff)
        past = declare(asset, asset.issuer, gross=50_000)
        DistributionPayment.objects.create(
            distribution=past,
            investor=investor,
            units=10,
            gross_minor=50,
            net_minor=50,
            status=P.PAID,
            paid_at=timezone.now(),
        )


def test_query_count_does_not_grow_with_rows(client, platform_accounts, investor, approver):
    client.force_login(investor)
    _rows(investor, approver, 2)
    client.get(PAGE)  # warm the session and the content types
    with CaptureQueriesContext(connection) as two:
        assert client.get(PAGE).content.decode().count('class="received-payment"') == 2
    _rows(investor, approver, 18)
    with CaptureQueriesContext(connection) as twenty:
        page = client.get(PAGE).content.decode()
    assert page.count('class="received-payment"') == 20 and page.count('class="upcoming-distribution"') == 20
    assert len(twenty) == len(two), [q["sql"] for q in twenty.captured_queries]


# the asset page's section ------------------------------------------------------------------


def test_asset_section_shows_only_approved_paying_and_paid(asset, approver, payer):
    declared = declare(asset, asset.issuer, gross=11_111)
    cancelled = declare(asset, asset.issuer, gross=22_222)
    dist.distribution_cancel(distribution=cancelled, actor=asset.issuer, reason="typo")
    upcoming(asset, approver, gross=33_333)
    paid = ready(declare(asset, asset.issuer, gross=44_444), approver, payer)
    dist.distribution_pay(distribution=paid, actor=payer)

    html = Template("{% load marketplace %}{% asset_distributions asset %}").render(
        Context({"asset": asset, "user": AnonymousUser()})
    )
    assert "333.33 EUR" in html and "444.44 EUR" in html
    assert "111.11 EUR" not in html and "222.22 EUR" not in html
    assert ">Upcoming<" in html and ">Paid<" in html
    assert declared.status == Distribution.Status.DECLARED


def test_asset_section_of_a_live_asset_without_distributions_says_so(asset):
    html = Template("{% load marketplace %}{% asset_distributions asset %}").render(
        Context({"asset": asset, "user": AnonymousUser()})
    )
    assert "No distribution has been announced yet" in html


# the issuer's declaration page -------------------------------------------------------------


def form_data(**overrides):
    data = {
        "kind": "rent",
        "gross": "1,234.56",
        "period_start": (TODAY - datetime.timedelta(days=30)).isoformat(),
        "period_end": TODAY.isoformat(),
        "record_at": (timezone.localtime() + datetime.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"),
        "payment_date": (TODAY + datetime.timedelta(days=7)).isoformat(),
        "note": "November rent",
    }
    data.update(overrides)
    return data


def test_issuer_declares_sees_why_it_is_not_paid_and_cancels(client, asset):
    client.force_login(asset.issuer)
    assert client.get(declare_page(asset)).status_code == 200
    response = client.post(declare_page(asset), form_data())
    assert response.status_code == 302
    d = Distribution.objects.get()
    assert (d.gross_minor, d.currency, d.declared_by, d.status) == (123_456, "EUR", asset.issuer, "declared")
    page = text(client.get(declare_page(asset)))
    assert "It waits for approval by a second person." in page and "1,234.56 EUR" in page

    cancel = reverse("marketplace:distribution_cancel", args=[d.public_id])
    response = client.post(cancel, {"reason": ""}, follow=True)
    assert "Give a reason for the cancellation." in text(response)
    d.refresh_from_db()
    assert d.status == "declared"
    client.post(cancel, {"reason": "Wrong amount"})
    d.refresh_from_db()
    assert d.status == "cancelled" and d.cancel_reason == "Wrong amount"


def test_issuer_cannot_cancel_an_approved_one_and_sees_the_funding_refusal(client, asset, approver):
    d = upcoming(asset, approver)
    client.force_login(asset.issuer)
    page = text(client.get(declare_page(asset)))
    assert "It is not fully funded: 0.00 EUR of 12,345.67 EUR." in page
    response = client.post(reverse("marketplace:distribution_cancel", args=[d.public_id]), {"reason": "x"}, follow=True)
    assert "its issuer only before approval" in text(response)
    d.refresh_from_db()
    assert d.status == "approved"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"gross": "0"}, "greater than zero"),
        ({"gross": "-5"}, "greater than zero"),
        ({"gross": "1e309"}, "as a number"),
        ({"gross": "１２３"}, "Use the digits 0-9."),
        ({"gross": "9" * 10_000}, "at most 32 characters"),
        ({"gross": "12\x00"}, "Null characters"),
        ({"gross": "1.005"}, "two decimal places"),
        ({"note": "n" * 10_000}, "at most 1000 characters"),
        ({"note": "a\x00b"}, "Null characters"),
        ({"kind": "bonus"}, "Select a valid choice"),
        ({"period_start": "99999-01-01"}, "valid date"),
        ({"record_at": (TODAY + datetime.timedelta(days=9)).isoformat() + "T10:00"}, "on or before the payment date"),
        ({"period_end": (TODAY - datetime.timedelta(days=60)).isoformat()}, "ends before it starts"),
        ({"payment_date": (TODAY - datetime.timedelta(days=1)).isoformat()}, "cannot be in the past"),
    ],
)
def test_hostile_or_wrong_values_are_400_with_the_message(client, asset, overrides, message):
    client.force_login(asset.issuer)
    response = client.post(declare_page(asset), form_data(**overrides))
    assert response.status_code == 400
    assert message.lower() in text(response).lower()
    assert not Distribution.objects.exists()


def test_every_refusal_shows_at_once(client, asset):
    client.force_login(asset.issuer)
    response = client.post(
        declare_page(asset),
        form_data(gross="abc", payment_date=(TODAY - datetime.timedelta(days=1)).isoformat()),
    )
    page = text(response)
    assert response.status_code == 400 and "as a number" in page and "cannot be in the past" in page


def test_other_issuers_investors_and_strangers_get_404(client, asset, approver):
    d = upcoming(asset, approver)
    other_issuer = OfferingFactory(asset__issuer=IssuerFactory()).asset.issuer
    for user in (other_issuer, verified_investor(), UserFactory(is_staff=True)):
        client.force_login(user)
        assert client.get(declare_page(asset)).status_code == 404
        assert client.post(declare_page(asset), form_data()).status_code == 404
        assert (
            client.post(reverse("marketplace:distribution_cancel", args=[d.public_id]), {"reason": "x"}).status_code
            == 404
        )
    assert Distribution.objects.count() == 1
    client.logout()
    assert client.get(declare_page(asset)).status_code == 302


def test_csrf_is_required(asset):
    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(asset.issuer)
    assert csrf_client.post(declare_page(asset), form_data()).status_code == 403
    d = declare(asset, asset.issuer)
    cancel = reverse("marketplace:distribution_cancel", args=[d.public_id])
    assert csrf_client.post(cancel, {"reason": "x"}).status_code == 403
    staff = StaffFactory()
    csrf_client.force_login(staff)
    approve = reverse("admin:marketplace_distribution_approve", args=[d.pk])
    assert csrf_client.post(approve, {"_approve": "1"}).status_code == 403
    d.refresh_from_db()
    assert d.status == "declared"


def test_declaring_is_rate_limited(client, asset, monkeypatch):
    from marketplace import distribution_views

    # A counter of its own: the shared cache outlives the test database's user ids.
    key = f"test:{uuid.uuid4().hex}"
    monkeypatch.setattr(distribution_views, "client_key", lambda request: key)
    monkeypatch.setattr(distribution_views, "DECLARE_RATE", (3, 60))
    client.force_login(asset.issuer)
    limit = 3
    statuses = [client.post(declare_page(asset), form_data(gross="0")).status_code for _ in range(limit + 1)]
    assert statuses[:limit] == [400] * limit and statuses[-1] == 429


# the back office ------------------------------------------------------------------------------


def admin_declare_data(asset, **overrides):
    data = form_data(**overrides)
    data["asset"] = asset.pk
    data["record_at"] = timezone.localtime().strftime("%Y-%m-%dT%H:%M")
    data["payment_date"] = TODAY.isoformat()
    return data


def test_admin_declares_and_the_declarer_cannot_approve(client, asset):
    declarer, other = StaffFactory(), StaffFactory()
    client.force_login(declarer)
    add = reverse("admin:marketplace_distribution_add")
    assert client.get(add).status_code == 200
    response = client.post(add, admin_declare_data(asset, gross="1e309"))
    assert response.status_code == 200 and "as a number" in text(response)
    assert client.post(add, admin_declare_data(asset, gross="500.00")).status_code == 302
    d = Distribution.objects.get()
    assert (d.gross_minor, d.declared_by) == (50_000, declarer)

    approve = reverse("admin:marketplace_distribution_approve", args=[d.pk])
    response = client.post(approve, {"_approve": "1"})
    assert response.status_code == 200 and "Four eyes" in text(response)
    d.refresh_from_db()
    assert d.status == "declared"
    # No field of the row can be edited: the change page is view-only, its POST changes nothing.
    change = reverse("admin:marketplace_distribution_change", args=[d.pk])
    page = text(client.get(change))
    assert 'class="distribution-action">Approve<' in page and approve in page and 'name="gross' not in page
    client.post(change, {"status": "paid", "gross_minor": "1"})
    d.refresh_from_db()
    assert (d.status, d.gross_minor) == ("declared", 50_000)

    client.force_login(other)
    assert client.post(approve, {"_approve": "1"}).status_code == 302
    d.refresh_from_db()
    assert d.status == "approved" and d.approved_by == other


def test_admin_funds_and_pays_now(client, offering, fund):
    asset = offering.asset
    holder = verified_investor()
    buy(holder, offering, 100, fund)
    approver, payer = StaffFactory(), StaffFactory()
    d = declare(asset, asset.issuer, gross=100_000)
    dist.distribution_approve(distribution=d, actor=approver)
    client.force_login(payer)
    pay = reverse("admin:marketplace_distribution_pay", args=[d.pk])
    page = text(client.get(pay))
    assert "It is not fully funded: 0.00 EUR of 1,000.00 EUR." in page and 'name="_pay"' not in page
    assert client.post(pay, {"_pay": "1"}).status_code == 200
    assert Distribution.objects.get(pk=d.pk).status == "approved"

    fund_url = reverse("admin:marketplace_distribution_fund", args=[d.pk])
    response = client.post(fund_url, {"amount": "2,000.00", "source": dist.FUND_BY_DEPOSIT, "bank_reference": "R1"})
    assert response.status_code == 400 and "still to be funded" in text(response)
    response = client.post(fund_url, {"amount": "1,000.00", "source": dist.FUND_BY_DEPOSIT, "bank_reference": ""})
    assert response.status_code == 400 and "bank reference" in text(response)
    assert (
        client.post(
            fund_url, {"amount": "1,000.00", "source": dist.FUND_BY_DEPOSIT, "bank_reference": "R1"}
        ).status_code
        == 302
    )
    d.refresh_from_db()
    assert d.funded_minor == 100_000

    assert 'name="_pay"' in text(client.get(pay))
    response = client.post(pay, {"_pay": "1"}, follow=True)
    assert "Paid: 2 shares paid, 0 held" in text(response)
    d.refresh_from_db()
    assert d.status == "paid"
    assert DistributionPayment.objects.get(distribution=d, investor=holder, treasury=False).gross_minor == 1_000
    assert "It has been paid." in text(client.get(pay))


def test_staff_without_the_permissions_get_403(client, asset):
    d = declare(asset, asset.issuer)
    client.force_login(UserFactory(is_staff=True))
    for name in ("approve", "fund", "pay", "cancel"):
        url = reverse(f"admin:marketplace_distribution_{name}", args=[d.pk])
        assert client.post(url, {"_approve": "1", "text": "x"}).status_code == 403
    assert client.get(reverse("admin:marketplace_distribution_add")).status_code == 403


def test_compliance_releases_a_held_payment_in_the_back_office(client, offering, fund, approver, payer):
    asset = offering.asset
    lapsed = verified_investor()
    buy(lapsed, offering, 10, fund)
    KycApplication.objects.filter(user=lapsed).update(expires_at=TODAY - datetime.timedelta(days=1))
    d = ready(declare(asset, asset.issuer, gross=100_000), approver, payer)
    dist.distribution_pay(distribution=d, actor=payer)
    held = DistributionPayment.objects.get(distribution=d, investor=lapsed)
    assert held.status == P.HELD
    decide = reverse("admin:marketplace_distributionpayment_decide", args=[held.pk])

    officer = UserFactory(is_staff=True)
    client.force_login(officer)
    assert client.post(decide, {"text": "KYC renewed", "_release": "1"}).status_code == 403
    officer.user_permissions.add(
        Permission.objects.get(codename="release_distribution_payment"),
        Permission.objects.get(codename="view_distributionpayment"),
    )
    listing = text(client.get(reverse("admin:marketplace_distributionpayment_changelist"), {"status__exact": "held"}))
    assert "Release or return" in listing and lapsed.email in listing

    response = client.post(decide, {"text": "", "_release": "1"})
    assert response.status_code == 200 and "Give a reason." in text(response)
    response = client.post(decide, {"text": "renewed?", "_release": "1"})
    assert "still cannot be paid" in text(response)
    KycApplication.objects.filter(user=lapsed).update(expires_at=TODAY + datetime.timedelta(days=300))
    assert client.post(decide, {"text": "KYC renewed", "_release": "1"}).status_code == 302
    held.refresh_from_db()
    assert held.status == P.RELEASED and held.decided_by == officer
    assert text(client.get(PAGE)).count("Released") == 0  # the officer holds nothing
    client.force_login(lapsed)
    assert 'data-status="released"' in text(client.get(PAGE))


def test_admin_pages_render(client, offering, fund, approver, payer):
    asset = offering.asset
    buy(verified_investor(), offering, 10, fund)
    d = ready(declare(asset, asset.issuer, gross=100_000), approver, payer)
    dist.distribution_pay(distribution=d, actor=payer)
    client.force_login(approver)
    assert "1,000.00 EUR" in text(client.get(reverse("admin:marketplace_distribution_changelist")))
    page = text(client.get(reverse("admin:marketplace_distribution_change", args=[d.pk])))
    assert "Paid:" in page and "Every payment" in page
    listing = client.get(reverse("admin:marketplace_distributionpayment_changelist"), {"distribution__id__exact": d.pk})
    assert listing.status_code == 200 and "1.00 EUR" in text(listing) and "999.00 EUR" in text(listing)
    payment = DistributionPayment.objects.filter(distribution=d).first()
    assert client.get(reverse("admin:marketplace_distributionpayment_change", args=[payment.pk])).status_code == 200


def test_received_payments_are_paginated(client, platform_accounts, investor, approver, monkeypatch):
    from marketplace import distribution_selectors

    monkeypatch.setattr(distribution_selectors, "PAGE_SIZE", 5)
    _rows(investor, approver, 7)
    client.force_login(investor)
    first, second = text(client.get(PAGE)), text(client.get(PAGE, {"page": "2"}))
    assert first.count('class="received-payment"') == 5 and "Page 1 of 2" in first and "?page=2" in first
    assert second.count('class="received-payment"') == 2 and "Page 2 of 2" in second


# reinvestment instructions ------------------------------------------------------------------


@pytest.mark.django_db
def test_investor_sets_changes_and_removes_a_reinvestment_instruction(client, offering, fund):
    from marketplace.models import ReinvestmentInstruction

    holder = verified_investor()
    buy(holder, offering, 3, fund)
    client.force_login(holder)
    url = reverse("marketplace:reinvestment_update", args=[offering.asset.public_id])
    page = client.get(reverse("marketplace:distributions"))
    assert url in page.content.decode() and 'value="none" checked' in page.content.decode()

    assert client.post(url, {"target": "primary"}).status_code == 302
    instruction = ReinvestmentInstruction.objects.get(investor=holder, asset=offering.asset)
    assert (instruction.target, instruction.limit_price_minor) == ("primary", None)

    client.post(url, {"target": "market", "limit_price": "98.50"})
    instruction.refresh_from_db()
    assert (instruction.target, instruction.limit_price_minor) == ("market", 9_850)
    assert 'value="98.50"' in client.get(reverse("marketplace:distributions")).content.decode()

    for bad in ("", "0", "-1", "1e309", "１２", "9" * 10_000, "1\x00"):
        response = client.post(url, {"target": "market", "limit_price": bad}, follow=True)
        assert response.status_code == 200
        instruction.refresh_from_db()
        assert instruction.limit_price_minor == 9_850  # unchanged, and a message said why
    response = client.post(url, {"target": "everything"}, follow=True)
    assert "Choose where to reinvest" in response.content.decode()

    client.post(url, {"target": "none"})
    assert not ReinvestmentInstruction.objects.filter(investor=holder).exists()


@pytest.mark.django_db
def test_reinvestment_only_for_assets_one_holds_and_with_csrf(client, offering, fund):
    from marketplace.models import ReinvestmentInstruction

    stranger = verified_investor()
    client.force_login(stranger)
    url = reverse("marketplace:reinvestment_update", args=[offering.asset.public_id])
    response = client.post(url, {"target": "primary"}, follow=True)
    assert "only reinvest distributions of an asset you hold" in response.content.decode()
    assert client.post(reverse("marketplace:reinvestment_update", args=[uuid.uuid4()]), {}).status_code == 404
    holder = verified_investor()
    buy(holder, offering, 1, fund)
    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(holder)
    assert csrf_client.post(url, {"target": "primary"}).status_code == 403
    assert not ReinvestmentInstruction.objects.exists()
