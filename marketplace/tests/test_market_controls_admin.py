"""Back office of the market controls: halt/resume a book, its band, mode and hours, and
the whole market; each page gated by its permission (403), through the audited services,
CSRF-protected, hostile values answered 400 with a message and nothing changed."""

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from accounts.roles import ADMIN
from accounts.tests.factories import UserFactory
from assets.tests.factories import IssuerFactory
from compliance.models import AuditEntry
from marketplace.models import Market, MarketEvent, MarketWideControl

from .factories import OfferingFactory, verified_investor
from .trading_helpers import give_units, place

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def rates(settings):
    settings.MARKETPLACE_TRADE_ORDER_RATE = (1000, 60)
    settings.MARKETPLACE_PRICE_CHECKS = []


@pytest.fixture
def market(platform_accounts):
    asset = OfferingFactory().asset
    seller = verified_investor()
    give_units(seller, asset, 10)
    place(seller, asset, "sell", 1, 10_000)
    return Market.objects.get(asset=asset)


def staff_with(*codenames):
    user = UserFactory(roles=[], is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="marketplace", codename__in=codenames))
    return user


def pages(market):
    return {
        "halt": reverse("admin:marketplace_market_halt", args=[market.pk]),
        "controls": reverse("admin:marketplace_market_controls", args=[market.pk]),
        "wide": reverse("admin:marketplace_market_wide_halt"),
    }


CONTROLS = {
    "band_pct": "10",
    "trading_mode": "continuous",
    "time_zone": "Europe/Zurich",
    "trading_hours": "",
    "auction_times": "",
    "reason": "Tighter band",
}


def test_the_operations_role_can_halt_and_change_controls(client, market):
    client.force_login(UserFactory(roles=[ADMIN], is_staff=True))
    for path in pages(market).values():
        assert client.get(path).status_code == 200, path
    body = client.get(reverse("admin:marketplace_market_changelist")).content.decode()
    assert pages(market)["wide"] in body


@pytest.mark.parametrize("page", ["halt", "controls", "wide"])
def test_without_the_permission_403_and_investors_never_reach_the_back_office(client, market, page):
    path = pages(market)[page]
    client.force_login(staff_with("view_market", "change_market"))
    assert client.get(path).status_code == 403
    assert client.post(path, {**CONTROLS, "reason": "x"}).status_code == 403
    for outsider in (verified_investor(), IssuerFactory()):
        client.force_login(outsider)
        response = client.post(path, {**CONTROLS, "reason": "x"})
        assert response.status_code == 302 and "/backoffice/login/" in response["Location"]
    market.refresh_from_db()
    assert not market.halted and market.band_pct is None and not MarketWideControl.objects.filter(halted=True).exists()
    assert not AuditEntry.objects.filter(action__startswith="market.").exists()


def test_halt_and_resume_a_book_with_a_reason(client, market):
    halter = staff_with("halt_market", "view_market")
    client.force_login(halter)
    response = client.post(pages(market)["halt"], {"reason": "Corporate action"})
    assert response.status_code == 302
    market.refresh_from_db()
    assert (market.halted, market.halt_reason) == (True, "Corporate action")
    assert AuditEntry.objects.get(action="market.halted").actor_id == halter.pk
    body = client.get(pages(market)["halt"]).content.decode()
    assert "Resume trading" in body and "Corporate action" in body
    assert client.post(pages(market)["halt"], {"reason": "Done"}).status_code == 302
    market.refresh_from_db()
    assert not market.halted and market.auction_reason == "reopening"
    assert list(MarketEvent.objects.order_by("pk").values_list("kind", flat=True)) == [
        "halted",
        "resumed",
        "auction_called",
    ]


def test_halt_and_resume_the_whole_market(client, market):
    client.force_login(staff_with("halt_market"))
    assert client.post(pages(market)["wide"], {"reason": "Incident"}).status_code == 302
    assert MarketWideControl.objects.get(pk=1).reason == "Incident"
    assert AuditEntry.objects.filter(action="market.wide_halted").count() == 1
    assert client.post(pages(market)["wide"], {"reason": "Over"}).status_code == 302
    assert not MarketWideControl.objects.get(pk=1).halted
    assert AuditEntry.objects.filter(action="market.wide_resumed").count() == 1


def test_change_the_band_mode_and_hours(client, market):
    client.force_login(staff_with("change_market_controls"))
    response = client.post(pages(market)["controls"], CONTROLS)
    assert response.status_code == 302, response.content.decode()[:2000]
    market.refresh_from_db()
    assert (market.band_pct, market.time_zone) == (10, "Europe/Zurich")
    data = {**CONTROLS, "trading_mode": "auction", "auction_times": '["15:00"]', "reason": "Thin book"}
    assert client.post(pages(market)["controls"], data).status_code == 302
    market.refresh_from_db()
    assert (market.trading_mode, market.auction_times, market.auction_reason) == ("auction", ["15:00"], "scheduled")
    assert AuditEntry.objects.filter(action="market.controls_changed").count() == 2


@pytest.mark.parametrize(
    "page, data",
    [
        ("halt", {"reason": ""}),
        ("halt", {"reason": "x" * 10_000}),
        ("halt", {"reason": "a\x00b"}),
        ("controls", {**CONTROLS, "band_pct": "1e309"}),
        ("controls", {**CONTROLS, "band_pct": "١٢"}),
        ("controls", {**CONTROLS, "band_pct": "0"}),
        ("controls", {**CONTROLS, "band_pct": "9" * 10_000}),
        ("controls", {**CONTROLS, "time_zone": "Europe/Zurich\x00"}),
        ("controls", {**CONTROLS, "time_zone": "Mars/Olympus"}),
        ("controls", {**CONTROLS, "trading_hours": '{"mon": ["17:00", "09:00"]}'}),
        ("controls", {**CONTROLS, "trading_hours": "1e309"}),
        ("controls", {**CONTROLS, "trading_hours": "{" * 10_000}),
        ("controls", {**CONTROLS, "auction_times": '["15:00"'}),
        ("controls", {**CONTROLS, "trading_mode": "auction", "auction_times": ""}),
        ("controls", {**CONTROLS, "trading_mode": "halted"}),
        ("controls", {**CONTROLS, "reason": "x" * 10_000}),
        ("wide", {"reason": "a\x00b"}),
    ],
)
def test_hostile_values_get_400_with_a_message_and_change_nothing(client, market, page, data):
    client.force_login(staff_with("halt_market", "change_market_controls"))
    response = client.post(pages(market)[page], data)
    assert response.status_code == 400
    assert "errorlist" in response.content.decode()
    market.refresh_from_db()
    assert not market.halted and market.band_pct is None and market.trading_mode == "continuous"
    assert not MarketWideControl.objects.filter(halted=True).exists()
    assert not AuditEntry.objects.filter(action__startswith="market.").exists()


def test_the_posts_need_the_csrf_token(market):
    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(UserFactory(roles=[ADMIN], is_staff=True))
    for page, data in (("halt", {"reason": "x"}), ("controls", CONTROLS), ("wide", {"reason": "x"})):
        assert csrf_client.post(pages(market)[page], data).status_code == 403, page
    market.refresh_from_db()
    assert not market.halted and market.band_pct is None
    assert not MarketWideControl.objects.filter(halted=True).exists()


def test_the_change_form_does_not_edit_the_controls(client, market):
    client.force_login(UserFactory(roles=[ADMIN], is_staff=True))
    change = reverse("admin:marketplace_market_change", args=[market.pk])
    body = client.get(change).content.decode()
    for name in ("halted", "halt_reason", "trading_mode", "band_pct", "trading_hours", "next_auction_at"):
        assert f'name="{name}"' not in body, name
    assert pages(market)["halt"] in body and pages(market)["controls"] in body
    client.post(change, {"halted": "on", "band_pct": "1", "maker_fee_bps": "10", "taker_fee_bps": "25"})
    market.refresh_from_db()
    assert not market.halted and market.band_pct is None
