"""Hostile values in every parameter of every operation (query, path, header, body):
huge, tiny, exponent, NaN, Infinity, other scripts' digits, empty, 10,000 characters,
NUL. Each is a 4xx problem, never a 5xx, and changes nothing."""

import json

import pytest

from marketplace.models import TradeOrder

from .helpers import key, order_body

pytestmark = pytest.mark.django_db

HOSTILE = [
    "1e309",
    "-1e309",
    "NaN",
    "Infinity",
    "١٢٣",
    "²",
    "①",
    "",
    "x" * 10_000,
    "a\x00b",
    "\x00",
    "9" * 400,
    "-1",
    "0x10",
    "1.5",
    " 1",
]
LISTS = [
    "/api/v1/assets",
    "/api/v1/me/cash-movements",
    "/api/v1/me/orders",
    "/api/v1/me/trade-orders",
    "/api/v1/me/trades",
    "/api/v1/me/distributions",
]


def assert_4xx(response):
    assert 400 <= response.status_code < 500, (response.status_code, response.content[:300])
    assert response["Content-Type"] == "application/problem+json"


@pytest.fixture
def lists(asset):
    return LISTS + [f"/api/v1/assets/{asset.public_id}/trades"]


@pytest.mark.parametrize("value", HOSTILE)
def test_query_parameters_of_lists(alice_api, lists, value):
    for path in lists:
        for name in ("limit", "cursor"):
            response = alice_api.get(path, {name: value})
            if (name, value) in (("cursor", ""), ("limit", " 1")):
                # No cursor is the first page; spaces around a number are trimmed, as on the site.
                assert response.status_code == 200
            elif (name, value) != ("cursor", " 1"):
                assert_4xx(response)


@pytest.mark.parametrize("name", ["asset", "side", "quantity"])
def test_eligibility_parameters(alice_api, asset, name):
    for value in HOSTILE:
        params = {"asset": str(asset.public_id), "side": "buy", "quantity": "1", name: value}
        response = alice_api.get("/api/v1/me/eligibility", params)
        if (name, value) == ("quantity", " 1"):
            assert response.status_code == 200  # spaces around a number are trimmed, as on the site
        else:
            assert_4xx(response)


@pytest.mark.parametrize("value", HOSTILE)
def test_path_parameters(alice_api, value):
    from urllib.parse import quote

    segment = quote(value, safe="")
    for template in (
        "/api/v1/assets/{}",
        "/api/v1/assets/{}/book",
        "/api/v1/assets/{}/trades",
        "/api/v1/me/trade-orders/{}",
    ):
        assert_4xx(alice_api.get(template.format(segment)))
    assert_4xx(alice_api.post(f"/api/v1/me/trade-orders/{segment}/cancel"))


@pytest.mark.parametrize("value", HOSTILE)
def test_headers(alice, alice_api, asset, fund, value):
    fund(alice)
    placed = alice_api.post("/api/v1/me/trade-orders", order_body(asset), headers={"Idempotency-Key": value})
    opaque_key = 1 <= len(value) <= 64 and all("!" <= ch <= "~" for ch in value)
    if opaque_key:  # the key is the client's opaque text: "NaN" is a key like any other
        assert placed.status_code == 201
    else:
        assert_4xx(placed)
    assert_4xx(alice_api.get("/api/v1/me/portfolio", headers={"Authorization": f"Bearer {value}"}))
    assert_4xx(alice_api.get("/api/v1/me/portfolio", headers={"Authorization": value}))
    assert TradeOrder.objects.count() == (1 if opaque_key else 0)


RAW_NUMBERS = [
    "1e309",
    "-1e309",
    "NaN",
    "Infinity",
    "1.5",
    "1e2",
    "-1",
    "0",
    "99999999999999999999999999999",
    "true",
    "null",
]


@pytest.mark.parametrize("field", ["quantity", "limit_price_minor"])
def test_body_numbers(alice, alice_api, asset, fund, field):
    fund(alice)
    for raw in RAW_NUMBERS:
        text = json.dumps(order_body(asset)).replace(f'"{field}": {order_body(asset)[field]}', f'"{field}": {raw}')
        assert raw in text
        assert_4xx(alice_api.post("/api/v1/me/trade-orders", text, headers=key()))
    assert not TradeOrder.objects.exists()


@pytest.mark.parametrize("field", ["asset", "side", "quantity", "limit_price_minor", "time_in_force", "expires_at"])
def test_body_strings(alice, alice_api, asset, fund, field):
    fund(alice)
    for value in HOSTILE:
        body = {**order_body(asset), field: value}
        assert_4xx(alice_api.post("/api/v1/me/trade-orders", body, headers=key()))
    assert not TradeOrder.objects.exists()


def test_body_shapes(alice, alice_api, asset, fund):
    fund(alice)
    for text in ("", "[]", "null", "1", '"x"', "{", "\x00", "{" * 5_000, '{"asset": ' + "[" * 5_000, "x" * 10_000):
        assert_4xx(alice_api.post("/api/v1/me/trade-orders", text, headers=key()))
    assert not TradeOrder.objects.exists()


def test_expiry_far_in_the_future_is_refused_by_the_engine(alice, alice_api, asset, fund):
    fund(alice)
    body = order_body(asset, time_in_force="gtd", expires_at="9999-12-31T23:59:59Z")
    response = alice_api.post("/api/v1/me/trade-orders", body, headers=key())
    assert_4xx(response)
    assert response.json()["reason_codes"] == ["expiry_too_far"]
