"""The whole path through the API alone, over HTTP, with a real Celery worker and devnet:
two investors with personal access tokens place crossing orders, each receives the signed
trade.settled webhook at their own local receiver, and both portfolios change.

(The seller's units come from a primary purchase and the cash from deposits: those are set
up through the services, as the API does not take deposits.)"""

import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request
from datetime import timedelta

import pytest
from django.utils import timezone

from api.services import api_token_create
from marketplace.models import Offering, PrimaryOrder
from marketplace.services import deposit_record, order_place
from marketplace.tests.chain_helpers import mint_live_asset, wait_until
from marketplace.tests.factories import StaffFactory, verified_investor
from webhooks.services import endpoint_create
from webhooks.tests.receiver import Receiver

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def verify(secret: str, headers, body: bytes, tolerance: int = 300) -> bool:
    """docs/webhooks.md's verification, as a receiver would run it."""
    timestamp = headers["Webhook-Timestamp"]
    if abs(time.time() - int(timestamp)) > tolerance:
        return False
    expected = "v1=" + hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected, given) for given in headers["Webhook-Signature"].split())


def call(base: str, token: str, method: str, path: str, body: dict | None = None, key: str = ""):
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if key:
        headers["Idempotency-Key"] = key
    request = urllib.request.Request(f"{base}/api/v1{path}", data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def holding(base: str, token: str, asset) -> dict:
    status, portfolio = call(base, token, "GET", "/me/portfolio")
    assert status == 200, portfolio
    return next((h for h in portfolio["holdings"] if h["asset"] == str(asset.public_id)), {})


def test_two_investors_trade_through_the_api_and_receive_the_settled_webhook(
    live_server, chain_platform, celery_worker_process
):
    base = live_server.url
    asset = mint_live_asset(
        name="API Wharf", total_fractions=100, fractions_for_sale=60, price_per_fraction_minor=10_000
    )
    staff = StaffFactory()
    seller, buyer = verified_investor(), verified_investor()
    deposit_record(investor=seller, amount_minor=200_000, currency="EUR", bank_reference="API-S", actor=staff)
    deposit_record(investor=buyer, amount_minor=100_000, currency="EUR", bank_reference="API-B", actor=staff)
    bought = order_place(
        investor=seller, offering_id=Offering.objects.get(asset=asset).pk, quantity=10, idempotency_key="p"
    )
    wait_until(lambda: PrimaryOrder.objects.get(pk=bought.pk).status == "settled", 60, message="the primary purchase")

    expiry = timezone.now() + timedelta(days=7)
    _, seller_token = api_token_create(user=seller, name="bot", scopes=["read", "trade"], expires_at=expiry)
    _, buyer_token = api_token_create(user=buyer, name="bot", scopes=["read", "trade"], expires_at=expiry)
    seller_hooks, buyer_hooks = Receiver().start(), Receiver().start()
    try:
        _, seller_secret = endpoint_create(user=seller, url=seller_hooks.url, events=["trade.settled"])
        _, buyer_secret = endpoint_create(user=buyer, url=buyer_hooks.url, events=["trade.settled"])
        assert holding(base, seller_token, asset)["available_to_sell"] == 10

        ask = {"asset": str(asset.public_id), "side": "sell", "quantity": 4, "limit_price_minor": 10_500}
        status, sell = call(base, seller_token, "POST", "/me/trade-orders", ask, key="ask-1")
        assert status == 201 and sell["status"] == "open", sell
        bid = {"asset": str(asset.public_id), "side": "buy", "quantity": 4, "limit_price_minor": 10_500}
        status, buy = call(base, buyer_token, "POST", "/me/trade-orders", bid, key="bid-1")
        assert status == 201 and buy["status"] == "filled", buy

        def both_told():
            return seller_hooks.requests and buyer_hooks.requests

        wait_until(both_told, 90, message="the trade.settled webhooks")
        for receiver, secret in ((seller_hooks, seller_secret), (buyer_hooks, buyer_secret)):
            request = receiver.requests[0]
            assert verify(secret, request.headers, request.body)
            event = json.loads(request.body)
            assert event["type"] == "trade.settled" and request.headers["Webhook-Id"] == event["id"]
        assert holding(base, seller_token, asset)["settled"] == 6
        assert holding(base, buyer_token, asset)["settled"] == 4
        status, trades = call(base, buyer_token, "GET", "/me/trades")
        assert status == 200 and len(trades["items"]) == 1
    finally:
        seller_hooks.stop()
        buyer_hooks.stop()
