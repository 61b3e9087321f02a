"""Placing and cancelling secondary-market orders through the API: the engine's service
with the Idempotency-Key as its key (same key and body: the same order, 200; another
body: 409), its refusals with their reason codes, ownership (404 for anyone else's
order, staff included), and the order rate limit."""

import uuid

import pytest

from marketplace.models import TradeOrder
from marketplace.tests.trading_helpers import cash, give_units

from .helpers import ApiClient, assert_problem, key, make_token, order_body

pytestmark = pytest.mark.django_db

PLACE = "/api/v1/me/trade-orders"


def cancel_url(public_id) -> str:
    return f"/api/v1/me/trade-orders/{public_id}/cancel"


def test_place_answers_201_with_the_order_and_its_location(alice, alice_api, asset, fund):
    fund(alice)
    response = alice_api.post(PLACE, order_body(asset), headers=key())
    assert response.status_code == 201, response.content
    body = response.json()
    order = TradeOrder.objects.get(public_id=body["public_id"])
    assert order.investor == alice and order.quantity == 2 and order.status == "open"
    assert body["reserved_minor"] == order.reserved_minor > 0
    assert response["Location"].endswith(f"/api/v1/me/trade-orders/{order.public_id}")
    assert alice_api.get(response["Location"]).json()["public_id"] == str(order.public_id)
    assert cash(alice)[1] == order.reserved_minor


def test_same_key_same_body_returns_the_first_order_with_200(alice, alice_api, asset, fund):
    fund(alice)
    headers = key()
    first = alice_api.post(PLACE, order_body(asset), headers=headers)
    again = alice_api.post(PLACE, order_body(asset), headers=headers)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    assert TradeOrder.objects.filter(investor=alice).count() == 1


@pytest.mark.parametrize(
    "changed",
    [
        {"quantity": 3},
        {"limit_price_minor": 10_001},
        {"side": "sell"},
        {"time_in_force": "ioc"},
        {"time_in_force": "gtd", "expires_at": "2099-01-01T00:00:00Z"},
    ],
)
def test_same_key_other_body_is_409(alice, alice_api, asset, fund, changed):
    fund(alice)
    headers = key()
    assert alice_api.post(PLACE, order_body(asset), headers=headers).status_code == 201
    body = assert_problem(alice_api.post(PLACE, order_body(asset, **changed), headers=headers), 409, "conflict")
    assert body["reason_codes"] == ["idempotency_conflict"]
    assert TradeOrder.objects.filter(investor=alice).count() == 1


def test_the_idempotency_key_is_required_and_checked(alice, alice_api, asset, fund):
    fund(alice)
    body = assert_problem(alice_api.post(PLACE, order_body(asset)), 422, "validation")
    assert body["errors"][0]["location"] == "header" and body["errors"][0]["field"] == "Idempotency-Key"
    for bad in ("x" * 65, "two words", "é"):
        assert_problem(alice_api.post(PLACE, order_body(asset), headers={"Idempotency-Key": bad}), 422, "validation")
    assert not TradeOrder.objects.exists()


def test_refusals_carry_the_reason_codes(alice, alice_api, asset):
    # No cash, no units: the buy lacks cash, the sell lacks units.
    body = assert_problem(alice_api.post(PLACE, order_body(asset), headers=key()), 422, "refused")
    assert body["reason_codes"] == ["insufficient_cash"]
    body = assert_problem(alice_api.post(PLACE, order_body(asset, side="sell"), headers=key()), 422, "refused")
    assert "insufficient_units" in body["reason_codes"]


def test_input_refusals_name_their_field(alice, alice_api, asset, fund):
    fund(alice)
    body = assert_problem(
        alice_api.post(PLACE, order_body(asset, quantity=0, limit_price_minor=-5), headers=key()), 422, "refused"
    )
    assert {(e["field"], e["code"]) for e in body["errors"]} == {
        ("quantity", "not_positive"),
        ("limit_price_minor", "not_positive"),
    }


def test_eligibility_refusal_has_the_engine_codes(alice_api, asset, fund, alice):
    fund(alice)
    asset.allowed_countries = ["DE"]
    asset.save(update_fields=["allowed_countries"])
    body = assert_problem(alice_api.post(PLACE, order_body(asset), headers=key()), 422, "refused")
    assert body["reason_codes"] == ["country_not_allowed"], body


def test_an_unknown_asset_is_a_field_error(alice_api):
    body = assert_problem(
        alice_api.post(
            PLACE, {"asset": str(uuid.uuid4()), "side": "buy", "quantity": 1, "limit_price_minor": 1}, key()
        ),
        422,
        "validation",
    )
    assert body["errors"][0]["field"] == "asset"


def test_cancel_then_cancel_again_is_409(alice, alice_api, asset, fund):
    fund(alice)
    placed = alice_api.post(PLACE, order_body(asset), headers=key()).json()
    response = alice_api.post(cancel_url(placed["public_id"]))
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    assert cash(alice) == (1_000_000, 0)
    body = assert_problem(alice_api.post(cancel_url(placed["public_id"])), 409, "conflict")
    assert body["reason_codes"] == ["not_open"]


def test_another_investor_can_neither_read_nor_cancel_my_order(alice, bob, alice_api, bob_api, asset, fund):
    fund(alice)
    placed = alice_api.post(PLACE, order_body(asset), headers=key()).json()
    assert_problem(bob_api.get(f"/api/v1/me/trade-orders/{placed['public_id']}"), 404, "not-found")
    assert_problem(bob_api.post(cancel_url(placed["public_id"])), 404, "not-found")
    assert bob_api.get("/api/v1/me/trade-orders").json()["items"] == []
    assert TradeOrder.objects.get(public_id=placed["public_id"]).status == "open"


def test_a_staff_token_has_no_back_office_rights(alice, staff, alice_api, asset, fund):
    fund(alice)
    placed = alice_api.post(PLACE, order_body(asset), headers=key()).json()
    _token, secret = make_token(staff)
    staff_api = ApiClient(secret)
    assert_problem(staff_api.get(f"/api/v1/me/trade-orders/{placed['public_id']}"), 404)
    assert_problem(staff_api.post(cancel_url(placed["public_id"])), 404)
    assert TradeOrder.objects.get(public_id=placed["public_id"]).status == "open"


def test_a_sell_matches_a_resting_buy(alice, bob, alice_api, bob_api, asset, fund):
    fund(alice)
    give_units(bob, asset, 10)
    alice_api.post(PLACE, order_body(asset, quantity=3), headers=key())
    sold = bob_api.post(PLACE, order_body(asset, side="sell", quantity=3), headers=key())
    assert sold.status_code == 201 and sold.json()["status"] == "filled"
    mine = alice_api.get("/api/v1/me/trades").json()["items"]
    assert [(t["side"], t["quantity"], t["price_minor"]) for t in mine] == [("buy", 3, 10_000)]
    assert bob_api.get("/api/v1/me/trades").json()["items"][0]["side"] == "sell"


def test_placing_has_a_tighter_rate_limit(alice, alice_api, asset, fund, settings):
    settings.API_RATE_LIMIT_ORDERS = (2, 60)
    fund(alice)
    for _ in range(2):
        ok = alice_api.post(PLACE, order_body(asset, quantity=1), headers=key())
        assert ok.status_code == 201 and ok["RateLimit-Limit"] == "2"
    refused = assert_problem(alice_api.post(PLACE, order_body(asset, quantity=1), headers=key()), 429, "rate-limited")
    assert refused is not None
    response = alice_api.post(PLACE, order_body(asset, quantity=1), headers=key())
    assert int(response["Retry-After"]) >= 1
    assert response["RateLimit-Limit"] == "2" and response["RateLimit-Remaining"] == "0"
    assert 1 <= int(response["RateLimit-Reset"]) <= 60
    assert TradeOrder.objects.filter(investor=alice).count() == 2
    # Reading is not placing.
    assert alice_api.get("/api/v1/me/trade-orders").status_code == 200


# primary purchases and modifying orders ------------------------------------------------------


def test_buy_in_the_primary_offering_once_per_key(alice, alice_api, asset, fund):
    from marketplace.models import PrimaryOrder

    fund(alice)
    headers = key()
    body = {"asset": str(asset.public_id), "quantity": 3}
    first = alice_api.post("/api/v1/me/orders", body, headers=headers)
    assert first.status_code == 201, first.content
    order = PrimaryOrder.objects.get(public_id=first.json()["public_id"])
    assert order.investor == alice and order.quantity == 3 and first.json()["total_minor"] == order.total_minor
    again = alice_api.post("/api/v1/me/orders", body, headers=headers)
    assert again.status_code == 200 and again.json() == first.json()
    other = alice_api.post("/api/v1/me/orders", {**body, "quantity": 4}, headers=headers)
    assert_problem(other, 409)
    assert PrimaryOrder.objects.filter(investor=alice).count() == 1
    for bad in ({"asset": str(asset.public_id), "quantity": 0}, {"asset": str(asset.public_id), "quantity": "1e309"}):
        assert alice_api.post("/api/v1/me/orders", bad, headers=key()).status_code == 422


def test_buying_needs_the_trade_scope(alice, asset, fund):
    fund(alice)
    _token, secret = make_token(alice, scopes=["read"])
    response = ApiClient(secret).post(
        "/api/v1/me/orders", {"asset": str(asset.public_id), "quantity": 1}, headers=key()
    )
    assert_problem(response, 403)


def test_modify_lowers_the_quantity_in_place_or_replaces_the_order(alice, bob_api, alice_api, asset, fund):
    fund(alice)
    placed = alice_api.post(PLACE, order_body(asset, quantity=5), headers=key()).json()
    url = f"/api/v1/me/trade-orders/{placed['public_id']}/modify"
    assert_problem(bob_api.post(url, {"quantity": 2}, headers=key()), 404)  # not bob's
    assert alice_api.post(url, {}, headers=key()).status_code == 422
    smaller = alice_api.post(url, {"quantity": 2}, headers=key())
    assert smaller.status_code == 200 and smaller.json()["public_id"] == placed["public_id"]
    assert TradeOrder.objects.get(public_id=placed["public_id"]).remaining_quantity == 2
    repriced = alice_api.post(url, {"limit_price_minor": 9_000}, headers=key())
    assert repriced.status_code == 200 and repriced.json()["public_id"] != placed["public_id"]
    assert TradeOrder.objects.get(public_id=placed["public_id"]).status == "cancelled"
    assert_problem(alice_api.post(url, {"quantity": 1}, headers=key()), 409)  # no longer open
