"""The secondary market's back office: markets (fees; the controls are test_market_controls_admin.py), trade orders (staff cancel
with a reason, audited and mailed), trades (retry or reverse a failed settlement), each
gated by its permission, checked again by the engine, CSRF-protected."""

import pytest
from django.contrib.auth.models import Permission
from django.core import mail
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse

from accounts.roles import ADMIN, COMPLIANCE_OFFICER
from accounts.tests.factories import UserFactory
from compliance.models import AuditEntry
from marketplace.models import Market, Trade, TradeOrder

from .factories import OfferingFactory, verified_investor
from .trading_helpers import books_sound, cash, fail, give_units, place, units

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def rates(settings):
    settings.MARKETPLACE_MAKER_FEE_BPS = 10
    settings.MARKETPLACE_TAKER_FEE_BPS = 25
    settings.MARKETPLACE_TRADE_ORDER_RATE = (1000, 60)
    settings.MARKETPLACE_PRICE_CHECKS = []


@pytest.fixture
def asset(platform_accounts):
    return OfferingFactory().asset


@pytest.fixture
def buyer(fund):
    user = verified_investor()
    fund(user, 1_000_000)
    return user


@pytest.fixture
def seller(asset):
    user = verified_investor()
    give_units(user, asset, 50)
    return user


@pytest.fixture
def operations():
    return UserFactory(roles=[ADMIN], is_staff=True)


def staff_with(*codenames, invests=False):
    """Staff with exactly these marketplace permissions (and verified KYC when they invest too)."""
    user = verified_investor(roles=[], is_staff=True) if invests else UserFactory(roles=[], is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="marketplace", codename__in=codenames))
    return user


@pytest.fixture
def failed_trade(asset, buyer, seller):
    place(seller, asset, "sell", 3, 10_000)
    place(buyer, asset, "buy", 3, 10_000)
    trade = Trade.objects.get()
    fail(trade, error="algod rejected: asset frozen")
    trade.refresh_from_db()
    return trade


PAGES = [
    "admin:marketplace_market_changelist",
    "admin:marketplace_tradeorder_changelist",
    "admin:marketplace_trade_changelist",
]


@pytest.mark.parametrize("page", PAGES)
def test_operations_reach_the_market_pages_and_others_do_not(client, failed_trade, operations, page):
    client.force_login(operations)
    assert client.get(reverse(page)).status_code == 200
    client.force_login(UserFactory(roles=[COMPLIANCE_OFFICER], is_staff=True))
    assert client.get(reverse(page)).status_code == 403
    client.force_login(verified_investor())
    response = client.get(reverse(page))
    assert response.status_code == 302 and "/backoffice/login/" in response["Location"]


def test_the_trade_list_shows_the_settlement_state_and_the_way_to_resolve(client, failed_trade, operations):
    client.force_login(operations)
    body = client.get(reverse("admin:marketplace_trade_changelist") + "?status__exact=failed").content.decode()
    assert "asset frozen" in body and failed_trade.public_id.hex[:8] in body
    body = client.get(reverse("admin:marketplace_trade_change", args=[failed_trade.pk])).content.decode()
    assert reverse("admin:marketplace_trade_resolve", args=[failed_trade.pk]) in body


# -- markets --------------------------------------------------------------------------------


def test_staff_change_a_markets_fees_through_the_audited_service(client, asset, seller, operations):
    place(seller, asset, "sell", 1, 10_000)
    market = Market.objects.get(asset=asset)
    client.force_login(operations)
    change = reverse("admin:marketplace_market_change", args=[market.pk])
    assert client.get(change).status_code == 200
    # The mode and the halt are not fields of this form (market_controls owns them): ignored here.
    response = client.post(
        change, {"trading_mode": "auction", "halted": "on", "maker_fee_bps": "5", "taker_fee_bps": "30"}
    )
    assert response.status_code == 302
    market.refresh_from_db()
    assert (market.trading_mode, market.halted, market.maker_fee_bps, market.taker_fee_bps) == (
        "continuous",
        False,
        5,
        30,
    )
    entry = AuditEntry.objects.get(action="market.updated")
    assert entry.actor_id == operations.pk and set(entry.after) == {"maker_fee_bps", "taker_fee_bps"}
    # Hostile input: a message, nothing changes
    for bad in ({"taker_fee_bps": "10001"}, {"taker_fee_bps": "1e309"}, {"maker_fee_bps": "١٢"}):
        data = {"maker_fee_bps": "5", "taker_fee_bps": "30", **bad}
        response = client.post(change, data)
        assert response.status_code == 200 and "errorlist" in response.content.decode(), bad
    market.refresh_from_db()
    assert (market.maker_fee_bps, market.taker_fee_bps) == (5, 30)


def test_the_fee_service_no_longer_changes_the_mode(asset, seller, operations):
    from marketplace.trading_backoffice import market_update

    place(seller, asset, "sell", 1, 10_000)
    market = Market.objects.get(asset=asset)
    with pytest.raises(ValidationError):
        market_update(market=market, actor=operations, fields={"trading_mode": "auction"})
    market.refresh_from_db()
    assert market.trading_mode == "continuous"


def test_a_market_viewer_cannot_change_it(client, asset, seller):
    place(seller, asset, "sell", 1, 10_000)
    market = Market.objects.get(asset=asset)
    client.force_login(staff_with("view_market"))
    change = reverse("admin:marketplace_market_change", args=[market.pk])
    assert client.get(change).status_code == 200
    client.post(change, {"maker_fee_bps": "0", "taker_fee_bps": "0"})
    market.refresh_from_db()
    assert (market.trading_mode, market.maker_fee_bps) == ("continuous", 10)
    assert not AuditEntry.objects.filter(action="market.updated").exists()


# -- staff cancel --------------------------------------------------------------------------------


def test_staff_cancel_an_order_with_a_reason_audited_and_mailed(
    client, asset, buyer, operations, django_capture_on_commit_callbacks
):
    order = place(buyer, asset, "buy", 3, 10_001)
    client.force_login(operations)
    cancel = reverse("admin:marketplace_tradeorder_cancel", args=[order.pk])
    body = client.get(reverse("admin:marketplace_tradeorder_change", args=[order.pk])).content.decode()
    assert cancel in body
    response = client.post(cancel, {"text": "", "_cancel": "1"}, follow=True)
    assert "Say why the order is cancelled" in response.content.decode()
    order.refresh_from_db()
    assert order.status == "open"
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        client.post(cancel, {"text": "Suspected market abuse", "_cancel": "1"})
    order.refresh_from_db()
    assert (order.status, order.cancel_code, order.cancelled_by_id) == (
        "cancelled",
        "cancelled_by_staff",
        operations.pk,
    )
    assert cash(buyer) == (1_000_000, 0)
    entry = AuditEntry.objects.get(action="trade_order.cancelled_by_staff")
    assert entry.actor_id == operations.pk and entry.reason == "Suspected market abuse"
    assert [m.to for m in mail.outbox] == [[buyer.email]] and "Suspected market abuse" in mail.outbox[0].body
    books_sound()


def test_cancelling_needs_the_permission_and_never_ones_own_order(client, asset, buyer, fund):
    order = place(buyer, asset, "buy", 3, 10_001)
    cancel = reverse("admin:marketplace_tradeorder_cancel", args=[order.pk])
    client.force_login(staff_with("view_tradeorder"))
    assert client.get(cancel).status_code == 403
    assert client.post(cancel, {"text": "no", "_cancel": "1"}).status_code == 403
    # A staff member who also invests cannot cancel their own order here
    trader = staff_with("view_tradeorder", "cancel_any_tradeorder", invests=True)
    give_units(trader, asset, 5)
    own = place(trader, asset, "sell", 2, 20_000)
    client.force_login(trader)
    own_cancel = reverse("admin:marketplace_tradeorder_cancel", args=[own.pk])
    response = client.post(own_cancel, {"text": "mine", "_cancel": "1"}, follow=True)
    assert "Four eyes" in response.content.decode()
    own.refresh_from_db()
    order.refresh_from_db()
    assert own.status == "open" and order.status == "open"


# -- retry and reverse ---------------------------------------------------------------------------


def test_staff_retry_a_failed_settlement(client, failed_trade, operations):
    client.force_login(operations)
    client.post(reverse("admin:marketplace_trade_resolve", args=[failed_trade.pk]), {"text": "", "_retry": "1"})
    failed_trade.refresh_from_db()
    assert failed_trade.status == "matched" and failed_trade.chain_tx.status == "pending"
    assert AuditEntry.objects.filter(action="trade.settlement_retried", actor_id=operations.pk).exists()


def test_staff_reverse_a_failed_trade_exactly(client, failed_trade, operations, buyer, seller, asset):
    client.force_login(operations)
    resolve = reverse("admin:marketplace_trade_resolve", args=[failed_trade.pk])
    response = client.post(resolve, {"text": "", "_reverse": "1"}, follow=True)
    assert "Say why the trade is reversed" in response.content.decode()
    client.post(resolve, {"text": "Buyer frozen by court order", "_reverse": "1"})
    failed_trade.refresh_from_db()
    assert failed_trade.status == "reversed"
    assert cash(buyer) == (1_000_000, 0) and units(seller, asset) == (50, 0, 0, 0, 50)
    assert AuditEntry.objects.filter(action="trade.reversed", actor_id=operations.pk).exists()
    books_sound()


def test_each_settlement_action_needs_its_own_permission(client, failed_trade):
    resolve = reverse("admin:marketplace_trade_resolve", args=[failed_trade.pk])
    client.force_login(staff_with("view_trade"))
    assert client.get(resolve).status_code == 403
    retrier = staff_with("view_trade", "retry_trade")
    client.force_login(retrier)
    page = client.get(resolve).content.decode()
    assert 'name="_retry"' in page and 'name="_reverse"' not in page
    # Posting the button it was not shown does nothing (and the engine would refuse it too)
    response = client.post(resolve, {"text": "try anyway", "_reverse": "1"}, follow=True)
    assert "Choose an action." in response.content.decode()
    failed_trade.refresh_from_db()
    assert failed_trade.status == "failed"
    reverser = staff_with("view_trade", "reverse_trade")
    client.force_login(reverser)
    client.post(resolve, {"text": "", "_retry": "1"})
    failed_trade.refresh_from_db()
    assert failed_trade.status == "failed"


def test_nobody_resolves_a_trade_of_their_own(client, asset, fund):
    staff_buyer = staff_with("view_trade", "retry_trade", "reverse_trade", invests=True)
    fund(staff_buyer, 1_000_000)
    seller = verified_investor()
    give_units(seller, asset, 5)
    place(seller, asset, "sell", 1, 10_000)
    place(staff_buyer, asset, "buy", 1, 10_000)
    trade = Trade.objects.get()
    fail(trade)
    client.force_login(staff_buyer)
    resolve = reverse("admin:marketplace_trade_resolve", args=[trade.pk])
    response = client.post(resolve, {"text": "mine", "_reverse": "1"}, follow=True)
    assert "Four eyes" in response.content.decode()
    trade.refresh_from_db()
    assert trade.status == "failed"


def test_back_office_posts_need_the_csrf_token(asset, buyer, failed_trade, operations):
    order = place(buyer, asset, "buy", 1, 9_000)
    market = Market.objects.get(asset=asset)
    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(operations)
    posts = [
        (reverse("admin:marketplace_tradeorder_cancel", args=[order.pk]), {"text": "x", "_cancel": "1"}),
        (reverse("admin:marketplace_trade_resolve", args=[failed_trade.pk]), {"text": "x", "_reverse": "1"}),
        (
            reverse("admin:marketplace_market_change", args=[market.pk]),
            {"maker_fee_bps": "1", "taker_fee_bps": "1"},
        ),
    ]
    for path, data in posts:
        assert csrf_client.post(path, data).status_code == 403, path
    order.refresh_from_db()
    failed_trade.refresh_from_db()
    market.refresh_from_db()
    assert (order.status, failed_trade.status, market.maker_fee_bps) == ("open", "failed", 10)
    assert TradeOrder.objects.filter(status="open").count() == 1
