"""Who the API lets in: bearer tokens only (a session cookie alone is a 401, and no CSRF
token is needed with a bearer token), scopes per operation (read, trade), and failed
authentication slowed per address."""

import pytest
from django.test import Client

from .helpers import ApiClient, assert_problem, key, make_token, order_body

pytestmark = pytest.mark.django_db

READS = [
    "/api/v1/me/portfolio",
    "/api/v1/me/cash-movements",
    "/api/v1/me/orders",
    "/api/v1/me/trade-orders",
    "/api/v1/me/trades",
    "/api/v1/me/distributions",
]


@pytest.mark.parametrize("path", READS)
def test_no_token_is_401_with_a_bearer_challenge(anon_api, path):
    response = anon_api.get(path)
    assert_problem(response, 401, "unauthorized")
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


@pytest.mark.parametrize("path", READS)
def test_a_session_cookie_alone_is_401(alice, path):
    client = Client()
    client.force_login(alice)
    assert client.get("/me/profile/").status_code == 200  # the session works on the site
    assert_problem(client.get(path), 401, "unauthorized")


def test_a_session_cookie_cannot_place_orders(alice, asset, fund):
    fund(alice)
    client = Client()
    client.force_login(alice)
    response = client.post("/api/v1/me/trade-orders", order_body(asset), content_type="application/json", headers=key())
    assert_problem(response, 401)


def test_other_schemes_are_401(alice):
    _token, secret = make_token(alice)
    for header in (f"Basic {secret}", f"Token {secret}", secret, f"Bearer  {secret}", f"Bearer {secret} x"):
        assert_problem(Client().get(READS[0], headers={"Authorization": header}), 401)


def test_the_token_is_the_user_whatever_the_session(alice, bob, alice_api):
    alice_api.client.force_login(bob)
    assert alice_api.get("/api/v1/me/trade-orders").status_code == 200
    # Bob's session does not make the request Bob's: the token's owner is Alice.
    _token, secret = make_token(bob, scopes=("read",))
    assert ApiClient(secret).get("/api/v1/me/portfolio").status_code == 200


def test_bearer_requests_need_no_csrf_token(alice, asset, fund):
    fund(alice)
    _token, secret = make_token(alice)
    api = ApiClient(secret, enforce_csrf_checks=True)
    assert api.post("/api/v1/me/trade-orders", order_body(asset), headers=key()).status_code == 201


def test_a_read_token_cannot_place_or_cancel(alice, asset, fund):
    fund(alice)
    _token, secret = make_token(alice, scopes=("read",))
    api = ApiClient(secret)
    body = assert_problem(
        api.post("/api/v1/me/trade-orders", order_body(asset), headers=key()), 403, "insufficient-scope"
    )
    assert "trade" in body["detail"]
    assert (
        'error="insufficient_scope"'
        in api.post("/api/v1/me/trade-orders", order_body(asset), headers=key())["WWW-Authenticate"]
    )
    assert_problem(api.post("/api/v1/me/trade-orders/00000000-0000-0000-0000-000000000000/cancel"), 403)
    assert api.get(READS[0]).status_code == 200


def test_a_trade_only_token_cannot_read(alice):
    _token, secret = make_token(alice, scopes=("trade",))
    for path in READS:
        assert_problem(ApiClient(secret).get(path), 403, "insufficient-scope")


def test_public_operations_need_no_token(anon_api, asset):
    assert anon_api.get("/api/v1/assets").status_code == 200
    assert anon_api.get(f"/api/v1/assets/{asset.public_id}").status_code == 200


def test_failed_authentication_is_slowed_per_address(alice, settings):
    settings.API_RATE_LIMIT_AUTH_FAILED = (3, 300)
    bad = ApiClient("rwa_AAAAAAAA_" + "A" * 43)
    assert [bad.get(READS[0]).status_code for _ in range(4)] == [401, 401, 401, 429]
    response = bad.get(READS[0])
    assert_problem(response, 429, "rate-limited")
    assert int(response["Retry-After"]) >= 1 and response["RateLimit-Limit"] == "3"
    # Another address is not slowed.
    other = Client(REMOTE_ADDR="10.1.2.3")
    assert other.get(READS[0], headers={"Authorization": "Bearer rwa_AAAAAAAA_" + "A" * 43}).status_code == 401


def test_requests_are_limited_per_token_and_per_address(alice, bob, settings):
    settings.API_RATE_LIMIT_TOKEN = (2, 60)
    settings.API_RATE_LIMIT_ADDRESS = (5, 60)
    _token, a = make_token(alice)
    first, second = ApiClient(a), ApiClient(make_token(alice)[1])
    assert [first.get(READS[0]).status_code for _ in range(3)] == [200, 200, 429]
    assert second.get(READS[0]).status_code == 200  # another token of the same user: its own count
    # The address has made 4 requests; the 5th passes, the 6th is refused whatever the token.
    assert ApiClient(make_token(bob)[1]).get(READS[0]).status_code == 200
    response = ApiClient(make_token(bob)[1]).get(READS[0])
    assert_problem(response, 429, "rate-limited")
    assert response["RateLimit-Limit"] == "5" and response["RateLimit-Remaining"] == "0"
    assert Client(REMOTE_ADDR="10.9.9.9").get("/api/v1/assets").status_code == 200
