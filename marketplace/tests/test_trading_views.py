"""The secondary market's pages over HTTP: the trade page (book, live quote with the
engine's answer, order entry, my orders with cancel and modify), the order and trade
pages with live settlement, the portfolio's split; authorization, CSRF, hostile input
and query counts."""

import datetime
import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.roles import ADMIN, COMPLIANCE_OFFICER
from accounts.tests.factories import UserFactory
from marketplace.models import Holding, Trade, TradeOrder

from .factories import OfferingFactory, verified_investor
from .trading_helpers import books_sound, cash, confirm, give_units, place, units

pytestmark = pytest.mark.django_db

FUNDS = 1_000_000  # 10,000.00 EUR


@pytest.fixture(autouse=True)
def rates(settings):
    settings.MARKETPLACE_MAKER_FEE_BPS = 10
    settings.MARKETPLACE_TAKER_FEE_BPS = 25
    settings.MARKETPLACE_TRADE_ORDER_RATE = (1000, 60)
    settings.MARKETPLACE_MAX_OPEN_ORDERS_PER_ASSET = 20
    settings.MARKETPLACE_PRICE_CHECKS = []


@pytest.fixture
def asset(platform_accounts):
    return OfferingFactory().asset


@pytest.fixture
def buyer(fund):
    user = verified_investor()
    fund(user, FUNDS)
    return user


@pytest.fixture
def seller(asset):
    user = verified_investor()
    give_units(user, asset, 50)
    return user


def url(name, *args):
    return reverse(f"marketplace:{name}", args=args)


def htmx(client, method, path, data=None):
    return getattr(client, method)(path, data or {}, HTTP_HX_REQUEST="true")


def order_data(**overrides):
    data = {
        "side": "buy",
        "quantity": "3",
        "limit_price": "100.01",
        "time_in_force": "gtc",
        "expires_at": "",
        "idempotency_key": "key-1",
    }
    return {**data, **overrides}


def login_redirect(response) -> bool:
    return response.status_code == 302 and response["Location"].startswith(reverse("account_login"))


# -- the trade page ---------------------------------------------------------------------


def test_trade_page_shows_the_book_last_price_form_rule_and_my_orders(client, asset, buyer, seller):
    # Given two ask levels, a trade at 100.00 and a resting bid of the buyer
    place(seller, asset, "sell", 5, 10_000)
    place(seller, asset, "sell", 4, 10_500)
    place(seller, asset, "sell", 6, 10_500)
    place(buyer, asset, "buy", 2, 10_000)  # trades 2 at 100.00
    mine = place(buyer, asset, "buy", 7, 9_000)
    client.force_login(buyer)
    body = client.get(url("asset_trade", asset.public_id)).content.decode()
    # Then the book is aggregated by level, best first, with quantities and order counts
    asks = body[body.index('id="asks"') : body.index('id="market-trades"')]
    levels = re.findall(
        r'data-price="(\d+)"><td>[^<]+</td><td class="level-quantity">([\d,]+)</td><td>(\d+)</td>', asks
    )
    assert levels == [("10000", "3", "1"), ("10500", "10", "2")]
    bids = body[body.index('id="bids"') : body.index('id="asks"')]
    assert 'data-price="9000"' in bids and '<td class="level-quantity">7</td>' in bids
    assert '<strong id="last-price">100.00 EUR</strong>' in body
    # ... the form with its idempotency key, the self-trade rule, my open order with cancel and modify
    assert 'name="idempotency_key"' in body and "Good till date" in body and "Fill or kill" in body
    assert "Self-trade prevention" in body and "the rest of your new order is" in body
    assert f'data-order="{mine.public_id}"' in body
    assert url("trade_order_cancel", mine.public_id) in body and url("trade_order_modify", mine.public_id) in body
    # ... and the polled fragments (never the form) refresh on a timer and after each change
    assert body.count('hx-trigger="every 3s, trade-changed from:body"') == 2


def test_asset_offering_and_portfolio_link_to_the_trade_page(client, asset, seller):
    client.force_login(seller)
    trade = url("asset_trade", asset.public_id)
    assert trade in client.get(reverse("assets:detail", args=[asset.public_id])).content.decode()
    assert trade in client.get(url("offering", asset.public_id)).content.decode()
    assert trade in client.get(url("portfolio")).content.decode()


def test_polled_fragments_show_the_book_and_my_orders(client, asset, buyer, seller):
    place(seller, asset, "sell", 5, 10_000)
    order = place(buyer, asset, "buy", 2, 9_500)
    client.force_login(buyer)
    book = htmx(client, "get", url("trade_market_data", asset.public_id)).content.decode()
    assert book.strip().startswith('<section id="market-data"') and 'data-price="10000"' in book and "<html" not in book
    mine = htmx(client, "get", url("trade_mine", asset.public_id)).content.decode()
    assert mine.strip().startswith('<section id="mine"') and f'data-order="{order.public_id}"' in mine
    assert '<strong id="cash-available">' in mine and 'id="trade-form"' not in mine


def test_the_quote_shows_total_fee_reserve_and_the_engines_answer(client, asset, buyer):
    client.force_login(buyer)
    quote = url("trade_quote", asset.public_id)
    body = htmx(client, "get", quote, order_data()).content.decode()
    # 3 × 100.01 = 300.03; the taker rate (the higher) rounded up: 0.76
    assert "300.03 EUR" in body and '<strong id="quote-total">300.79 EUR</strong>' in body
    assert 'id="quote-reserve">300.79 EUR' in body and 'data-allowed="yes"' in body
    # More than the cash: the engine's sentence before the button
    body = htmx(client, "get", quote, order_data(quantity="100", limit_price="1000")).content.decode()
    assert 'data-allowed="no"' in body and 'data-code="insufficient_cash"' in body and "Not enough cash" in body
    # A sell of units the buyer does not have
    body = htmx(client, "get", quote, order_data(side="sell")).content.decode()
    assert 'data-code="insufficient_units"' in body and "You can sell 0 units" in body
    # Typing in progress: a prompt, then the form's message
    assert 'id="quote-prompt"' in htmx(client, "get", quote, order_data(quantity="")).content.decode()
    body = htmx(client, "get", quote, order_data(quantity="2.5")).content.decode()
    assert 'id="quote-errors"' in body and "whole number" in body


def test_an_unverified_investor_sees_the_engines_reasons_before_the_button(client, asset):
    client.force_login(UserFactory())
    body = htmx(client, "get", url("trade_quote", asset.public_id), order_data()).content.decode()
    assert 'data-allowed="no"' in body and "Verify your identity (KYC)" in body


def test_placing_a_crossing_order_trades_and_says_so(client, asset, buyer, seller):
    place(seller, asset, "sell", 2, 10_000)
    client.force_login(buyer)
    response = htmx(client, "post", url("trade_order_place", asset.public_id), order_data())
    body = response.content.decode()
    assert response.status_code == 200 and "trade-changed" in response["HX-Trigger"]
    order = TradeOrder.objects.get(investor=buyer)
    assert (order.filled_quantity, order.remaining_quantity, order.status) == (2, 1, "open")
    assert 'id="trade-result"' in body and "2 traded at once; 1 rest on the book at 100.01 EUR" in body
    # ... and a fresh form (a new key) keeps the side, price and time in force
    assert 'value="key-1"' not in body and 'value="100.01"' in body
    assert Trade.objects.get().quantity == 2
    books_sound()


def test_a_double_submit_places_one_order_and_reserves_once(client, asset, buyer):
    client.force_login(buyer)
    first = client.post(url("trade_order_place", asset.public_id), order_data())
    assert first.status_code == 302 and first["Location"] == url("asset_trade", asset.public_id)
    second = htmx(client, "post", url("trade_order_place", asset.public_id), order_data())
    assert second.status_code == 200 and "already placed" in second.content.decode()
    assert TradeOrder.objects.filter(investor=buyer).count() == 1
    assert cash(buyer) == (FUNDS - 30_079, 30_079)


BAD_INPUT = [
    ({"quantity": "0"}, "at least 1"),
    ({"quantity": "-3"}, "at least 1"),
    ({"quantity": "2.5"}, "whole number"),
    ({"quantity": "abc"}, "whole number"),
    ({"quantity": "1e309"}, "whole number"),
    ({"quantity": "١٢٣"}, "Use the digits 0-9."),
    ({"quantity": "1" * 10_000}, "at most 24 characters"),
    ({"quantity": "99999999999999999999"}, "too large"),
    ({"quantity": "10001"}, "The asset has only 10,000 fractions."),
    ({"quantity": "3\x00"}, "Null characters are not allowed."),
    ({"quantity": ""}, "Enter how many fractions."),
    ({"limit_price": "0"}, "greater than zero"),
    ({"limit_price": "-1.00"}, "greater than zero"),
    ({"limit_price": "0.001"}, "at most two decimal places"),
    ({"limit_price": "abc"}, "as a number"),
    ({"limit_price": "1e309"}, "as a number"),
    ({"limit_price": "NaN"}, "as a number"),
    ({"limit_price": "١٠٠"}, "Use the digits 0-9."),
    ({"limit_price": "9" * 10_000}, "at most 32 characters"),
    ({"limit_price": "99999999999999999999"}, "too large"),
    ({"limit_price": "10\x00"}, "Null characters are not allowed."),
    ({"limit_price": "90000000000000000.00"}, "too large"),
    ({"side": "short"}, "Choose buy or sell."),
    ({"side": ""}, "Choose buy or sell."),
    ({"time_in_force": "forever"}, "Choose how long the order lives"),
    ({"time_in_force": "gtd", "expires_at": ""}, "Give the date and time the order expires."),
    ({"time_in_force": "gtd", "expires_at": "2001-01-01T10:00"}, "The expiry must be in the future."),
    ({"time_in_force": "gtd", "expires_at": "next tuesday"}, "Enter the expiry as a date and time"),
    ({"time_in_force": "gtd", "expires_at": "9" * 10_000}, "Enter the expiry as a date and time"),
    ({"idempotency_key": ""}, "The form expired; reload the page and try again."),
    ({"idempotency_key": "k" * 65}, "The form expired; reload the page and try again."),
]


@pytest.mark.parametrize("bad, message", BAD_INPUT, ids=[f"{i}-{next(iter(b))}" for i, (b, _) in enumerate(BAD_INPUT)])
def test_bad_input_is_a_422_with_a_message_and_nothing_is_reserved(client, asset, buyer, bad, message):
    client.force_login(buyer)
    place_url = url("trade_order_place", asset.public_id)
    for response in (htmx(client, "post", place_url, order_data(**bad)), client.post(place_url, order_data(**bad))):
        assert response.status_code == 422, response.content[:300]
        assert message in response.content.decode()
    quote = htmx(client, "get", url("trade_quote", asset.public_id), order_data(**bad))
    assert quote.status_code == 200
    assert not TradeOrder.objects.exists()
    assert cash(buyer) == (FUNDS, 0)


def test_far_expiry_and_a_sell_without_units_are_refused_with_the_engines_words(client, asset, buyer):
    client.force_login(buyer)
    far = (timezone.now() + datetime.timedelta(days=400)).strftime("%Y-%m-%dT%H:%M")
    response = client.post(url("trade_order_place", asset.public_id), order_data(time_in_force="gtd", expires_at=far))
    assert response.status_code == 422 and "at most one year" in response.content.decode()
    response = htmx(client, "post", url("trade_order_place", asset.public_id), order_data(side="sell"))
    assert response.status_code == 422
    body = response.content.decode()
    assert 'id="trade-errors"' in body and "nothing is reserved" in body and "You can sell 0 units" in body
    assert not TradeOrder.objects.exists() and cash(buyer) == (FUNDS, 0)


def test_a_good_till_date_order_is_placed_with_its_expiry(client, asset, buyer):
    client.force_login(buyer)
    when = (timezone.now() + datetime.timedelta(days=2)).replace(second=0, microsecond=0)
    data = order_data(time_in_force="gtd", expires_at=when.strftime("%Y-%m-%dT%H:%M"))
    assert client.post(url("trade_order_place", asset.public_id), data).status_code == 302
    assert TradeOrder.objects.get().expires_at == when


def test_an_ineligible_investor_is_refused_with_the_engines_reasons(client, asset, fund):
    user = UserFactory()
    fund(user, FUNDS)
    client.force_login(user)
    response = htmx(client, "post", url("trade_order_place", asset.public_id), order_data())
    body = response.content.decode()
    assert response.status_code == 422 and "Verify your identity (KYC)" in body
    assert 'data-code="kyc_not_approved"' in body and "<code>kyc_not_approved</code>" in body
    assert not TradeOrder.objects.exists() and cash(user) == (FUNDS, 0)


def test_the_engines_rate_limit_is_a_429_with_a_message(client, asset, buyer, settings):
    settings.MARKETPLACE_TRADE_ORDER_RATE = (2, 60)
    client.force_login(buyer)
    for i in range(2):
        client.post(url("trade_order_place", asset.public_id), order_data(idempotency_key=f"k{i}", quantity="1"))
    response = htmx(client, "post", url("trade_order_place", asset.public_id), order_data(idempotency_key="k9"))
    assert response.status_code == 429 and "at most 2 orders every 60 seconds" in response.content.decode()
    assert TradeOrder.objects.count() == 2


def test_a_halted_market_refuses_orders_and_says_so(client, asset, buyer, seller):
    place(seller, asset, "sell", 1, 10_000)
    asset.market.__class__.objects.filter(asset=asset).update(halted=True)
    client.force_login(buyer)
    assert 'id="market-refusal"' in client.get(url("asset_trade", asset.public_id)).content.decode()
    response = htmx(client, "post", url("trade_order_place", asset.public_id), order_data())
    assert response.status_code == 422 and "halted" in response.content.decode()
    assert cash(buyer) == (FUNDS, 0)


# -- cancel and modify ----------------------------------------------------------------------


def test_the_owner_cancels_from_the_trade_page_and_everything_is_released(client, asset, buyer):
    order = place(buyer, asset, "buy", 3, 10_001)
    client.force_login(buyer)
    response = htmx(client, "post", url("trade_order_cancel", order.public_id))
    body = response.content.decode()
    assert response.status_code == 200 and body.strip().startswith('<section id="mine"') and "Order cancelled" in body
    assert "trade-changed" in response["HX-Trigger"]
    order.refresh_from_db()
    assert order.status == "cancelled" and cash(buyer) == (FUNDS, 0)
    # Twice: a message, not a 500
    again = htmx(client, "post", url("trade_order_cancel", order.public_id))
    assert again.status_code == 422 and "already cancelled" in again.content.decode()
    # Without HTMX: back to the order's page
    response = client.post(url("trade_order_cancel", order.public_id))
    assert response.status_code == 302 and response["Location"] == url("trade_order", order.public_id)


def test_lowering_the_quantity_keeps_priority_and_a_new_price_replaces_the_order(client, asset, seller):
    order = place(seller, asset, "sell", 10, 10_000)
    client.force_login(seller)
    modify = url("trade_order_modify", order.public_id)
    panel = htmx(client, "get", modify + "?on=trade").content.decode()
    assert panel.strip().startswith('<section id="modify-panel"') and 'value="100.00"' in panel
    data = {"quantity": "6", "limit_price": "100.00", "idempotency_key": "m1", "on": "trade"}
    response = htmx(client, "post", modify, data)
    assert "time priority kept" in response.content.decode() and "trade-changed" in response["HX-Trigger"]
    order.refresh_from_db()
    assert (order.status, order.remaining_quantity, order.priority) == ("open", 6, 1)
    assert units(seller, asset)[2] == 6
    # A new price from the order's page: replaced, and the page follows the new order
    response = htmx(client, "post", modify, {"quantity": "6", "limit_price": "101.50", "idempotency_key": "m2"})
    new = TradeOrder.objects.get(replaces=order)
    assert response["HX-Redirect"] == url("trade_order", new.public_id)
    assert new.limit_price_minor == 10_150 and new.priority == 2 and units(seller, asset)[2] == 6
    # Bad input over HTTP: 422 and nothing changes
    response = htmx(client, "post", url("trade_order_modify", new.public_id), {**data, "quantity": "1e309"})
    assert response.status_code == 422 and "whole number" in response.content.decode()
    response = htmx(client, "post", url("trade_order_modify", new.public_id), {**data, "limit_price": "0"})
    assert response.status_code == 422 and "greater than zero" in response.content.decode()
    response = htmx(client, "post", url("trade_order_modify", new.public_id), {**data, "quantity": "51"})
    assert response.status_code == 422 and "You can sell" in response.content.decode()
    new.refresh_from_db()
    assert (new.status, new.remaining_quantity, new.limit_price_minor) == ("open", 6, 10_150)
    books_sound()


# -- order and trade pages ------------------------------------------------------------------


def test_the_order_page_follows_its_fills_and_each_settlement_live(client, asset, buyer, seller):
    place(seller, asset, "sell", 2, 10_000)
    order = place(buyer, asset, "buy", 5, 10_000)
    trade = Trade.objects.get()
    client.force_login(buyer)
    page = client.get(url("trade_order", order.public_id)).content.decode()
    assert 'data-status="open"' in page and "2 of 5" in page and url("trade", trade.public_id) in page
    assert "Change the order" in page and "Cancel the order" in page
    fragment = htmx(client, "get", url("trade_order", order.public_id)).content.decode()
    assert fragment.strip().startswith('<section id="order-progress"') and 'hx-trigger="every 2s"' in fragment


def test_the_trade_page_shows_matched_then_confirmed_in_round_n_to_both_sides(client, asset, buyer, seller):
    place(seller, asset, "sell", 2, 10_000)
    place(buyer, asset, "buy", 2, 10_000)
    trade = Trade.objects.get()
    for user, words in ((buyer, "You bought"), (seller, "You sold")):
        client.force_login(user)
        body = client.get(url("trade", trade.public_id)).content.decode()
        assert words in body and 'data-status="matched"' in body and 'hx-trigger="every 1s"' in body
    confirm(trade, round_=271, txid="Q" * 52)
    fragment = htmx(client, "get", url("trade", trade.public_id)).content.decode()
    assert 'data-status="confirmed"' in fragment and '<span id="confirmed-round">271</span>' in fragment
    assert "Q" * 52 in fragment and "hx-trigger" not in fragment
    client.force_login(buyer)
    assert "Settled in round 271" in client.get(url("asset_trade", asset.public_id)).content.decode()
    # The asset's recent trades use the same word (one word for one state)
    recent = htmx(client, "get", url("trade_market_data", asset.public_id)).content.decode()
    assert "<td>Settled</td>" in recent and "Confirmed" not in recent


# -- authorization --------------------------------------------------------------------------


@pytest.fixture
def book(asset, buyer, seller):
    """A resting buy of the buyer, and a trade between buyer and seller."""
    place(seller, asset, "sell", 2, 10_000)
    place(buyer, asset, "buy", 2, 10_000)
    return place(buyer, asset, "buy", 4, 9_000), Trade.objects.get()


def test_another_investors_orders_and_trades_are_404_and_untouched(client, book, buyer):
    order, trade = book
    client.force_login(verified_investor())
    for path in (url("trade_order", order.public_id), url("trade", trade.public_id)):
        assert client.get(path).status_code == 404, path
    assert client.get(url("trade_order_modify", order.public_id)).status_code == 404
    assert client.post(url("trade_order_cancel", order.public_id)).status_code == 404
    data = {"quantity": "1", "limit_price": "1.00", "idempotency_key": "x"}
    assert client.post(url("trade_order_modify", order.public_id), data).status_code == 404
    order.refresh_from_db()
    assert (order.status, order.remaining_quantity, order.limit_price_minor) == ("open", 4, 9_000)


def test_staff_read_orders_and_trades_only_with_the_view_permission_and_never_act(client, book):
    order, trade = book
    client.force_login(UserFactory(roles=[COMPLIANCE_OFFICER], is_staff=True))
    assert client.get(url("trade_order", order.public_id)).status_code == 404
    assert client.get(url("trade", trade.public_id)).status_code == 404
    operations = UserFactory(roles=[ADMIN], is_staff=True)
    client.force_login(operations)
    page = client.get(url("trade_order", order.public_id)).content.decode()
    assert "Cancel the order" not in page and "Change the order" not in page
    assert client.get(url("trade", trade.public_id)).status_code == 200
    # Staff cancel in the back office, with a reason: never through the investor's button
    assert client.post(url("trade_order_cancel", order.public_id)).status_code == 404
    order.refresh_from_db()
    assert order.status == "open"


def test_anonymous_is_sent_to_sign_in_everywhere(client, asset, book):
    order, trade = book
    gets = [
        url("asset_trade", asset.public_id),
        url("trade_market_data", asset.public_id),
        url("trade_mine", asset.public_id),
        url("trade_quote", asset.public_id),
        url("trade_order", order.public_id),
        url("trade_order_modify", order.public_id),
        url("trade", trade.public_id),
    ]
    for path in gets:
        assert login_redirect(client.get(path)), path
    posts = [
        url("trade_order_place", asset.public_id),
        url("trade_order_cancel", order.public_id),
        url("trade_order_modify", order.public_id),
    ]
    for path in posts:
        assert login_redirect(client.post(path, order_data())), path
    assert TradeOrder.objects.count() == 3 and TradeOrder.objects.filter(status="open").count() == 1


def test_state_changes_refuse_get(client, asset, buyer, book):
    order, _ = book
    client.force_login(buyer)
    assert client.get(url("trade_order_place", asset.public_id), order_data()).status_code == 405
    assert client.get(url("trade_order_cancel", order.public_id)).status_code == 405
    assert client.put(url("trade_order_modify", order.public_id)).status_code == 405


def test_every_post_needs_the_csrf_token(asset, buyer, book):
    order, _ = book
    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(buyer)
    before = cash(buyer)
    assert csrf_client.post(url("trade_order_place", asset.public_id), order_data()).status_code == 403
    assert csrf_client.post(url("trade_order_cancel", order.public_id)).status_code == 403
    data = {"quantity": "1", "limit_price": "90.00", "idempotency_key": "c"}
    assert csrf_client.post(url("trade_order_modify", order.public_id), data).status_code == 403
    order.refresh_from_db()
    assert (order.status, order.remaining_quantity) == ("open", 4) and cash(buyer) == before
    assert TradeOrder.objects.count() == 3


def test_an_unknown_asset_is_a_404(client, buyer):
    client.force_login(buyer)
    missing = "00000000-0000-0000-0000-000000000000"
    assert client.get(f"/market/assets/{missing}/trade/").status_code == 404
    assert client.post(f"/market/assets/{missing}/trade/orders", order_data()).status_code == 404


# -- the portfolio --------------------------------------------------------------------------


def test_portfolio_shows_settled_pending_locked_available_and_cash_held_for_orders(client, asset, buyer, seller):
    place(seller, asset, "sell", 4, 10_000)
    place(buyer, asset, "buy", 3, 10_000)  # 3 trade: seller settling out 3, locked 1
    place(seller, asset, "sell", 10, 12_000)  # locks 10 more
    place(buyer, asset, "buy", 2, 9_000)  # holds 180.00 + 0.45
    client.force_login(seller)
    body = client.get(url("portfolio")).content.decode()
    row = body[body.index(f'data-asset="{asset.unit_name}"') :]
    assert '<td class="holding-quantity">50</td>' in row and '<td class="holding-locked">11</td>' in row
    assert '<td class="holding-settling-out">3</td>' in row and '<td class="holding-available">36</td>' in row
    assert 'id="trade-orders"' in body and 'id="trades"' in body and "sold" in body
    client.force_login(buyer)
    body = client.get(url("portfolio")).content.decode()
    row = body[body.index(f'data-asset="{asset.unit_name}"') :]
    assert '<td class="holding-quantity">0</td>' in row and '<td class="holding-pending">3</td>' in row
    assert '<td class="cash-held-orders">180.45 EUR</td>' in body
    assert units(seller, asset) == (50, 0, 11, 3, 36)


# -- query counts ---------------------------------------------------------------------------


def _queries(client, path) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(path).status_code == 200
    return len(ctx.captured_queries)


def test_trade_page_fragments_and_portfolio_queries_do_not_grow_with_orders_levels_and_trades(
    client, asset, buyer, fund, settings
):
    settings.MARKETPLACE_PRICE_BAND_PCT = 1000  # levels far from the last trade
    client.force_login(buyer)
    give_units(buyer, asset, 100)
    counterpart = verified_investor()
    fund(counterpart, FUNDS)
    give_units(counterpart, asset, 100)

    def grow(n, start):
        for i in range(start, start + n):
            place(counterpart, asset, "sell", 1, 20_000 + i)  # a new ask level
            place(buyer, asset, "buy", 1, 1_000 + i)  # a new bid level, my open order
            place(counterpart, asset, "buy", 1, 10_000)  # a resting bid ...
            place(buyer, asset, "sell", 1, 10_000)  # ... my sale into it: a trade
        for trade in Trade.objects.filter(status="matched")[:1]:
            confirm(trade, round_=7, txid="R" * 52)

    paths = [
        url("asset_trade", asset.public_id),
        url("trade_market_data", asset.public_id),
        url("trade_mine", asset.public_id),
        url("portfolio"),
    ]
    grow(2, 0)
    client.get(url("portfolio"))  # the first visit creates the payment reference (once)
    few = [_queries(client, p) for p in paths]
    grow(6, 2)
    assert Trade.objects.count() == 8 and TradeOrder.objects.filter(status="open").count() == 16
    assert [_queries(client, p) for p in paths] == few
    assert max(few) <= 25, few


def test_order_and_trade_page_queries_do_not_grow_with_fills(client, asset, buyer, fund):
    sellers = []
    for _ in range(6):
        user = verified_investor()
        give_units(user, asset, 10)
        sellers.append(user)
    place(sellers[0], asset, "sell", 1, 10_000)
    order = place(buyer, asset, "buy", 20, 10_000)
    client.force_login(buyer)
    few = _queries(client, url("trade_order", order.public_id))
    for user in sellers[1:]:
        place(user, asset, "sell", 1, 10_000)
    assert Trade.objects.filter(buy_order=order).count() == 6
    assert _queries(client, url("trade_order", order.public_id)) == few
    assert Holding.objects.get(investor=buyer, asset=asset).pending_quantity == 6
