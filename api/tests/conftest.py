"""Fixtures of the API tests: investors with tokens, a tradable asset, cash, and a client
that sends a bearer token."""

import uuid

import pytest

from marketplace.services import deposit_record
from marketplace.tests.factories import OfferingFactory, StaffFactory, verified_investor

from .helpers import FUNDS, ApiClient, make_token


@pytest.fixture(autouse=True)
def api_settings(settings):
    settings.MARKETPLACE_MAKER_FEE_BPS = 10
    settings.MARKETPLACE_TAKER_FEE_BPS = 25
    settings.MARKETPLACE_TRADE_ORDER_RATE = (1000, 60)
    settings.MARKETPLACE_PRICE_CHECKS = []
    settings.API_RATE_LIMIT_ADDRESS = (10_000, 60)
    settings.API_RATE_LIMIT_TOKEN = (10_000, 60)
    settings.API_RATE_LIMIT_ORDERS = (1_000, 60)
    settings.API_RATE_LIMIT_AUTH_FAILED = (1_000, 300)


@pytest.fixture
def platform_accounts(db):
    from chain.services import platform_accounts_ensure

    return {account.role: account for account, _ in platform_accounts_ensure()}


@pytest.fixture
def staff(db):
    return StaffFactory()


@pytest.fixture
def offering(platform_accounts):
    return OfferingFactory()


@pytest.fixture
def asset(offering):
    return offering.asset


@pytest.fixture
def fund(staff):
    def fund(user, amount_minor=FUNDS, currency="EUR"):
        return deposit_record(
            investor=user,
            amount_minor=amount_minor,
            currency=currency,
            bank_reference=f"TEST-{uuid.uuid4().hex[:12]}",
            actor=staff,
        )

    return fund


@pytest.fixture
def alice(db):
    return verified_investor()


@pytest.fixture
def bob(db):
    return verified_investor()


@pytest.fixture
def alice_api(alice):
    _token, secret = make_token(alice)
    return ApiClient(secret)


@pytest.fixture
def bob_api(bob):
    _token, secret = make_token(bob)
    return ApiClient(secret)


@pytest.fixture
def anon_api():
    return ApiClient()
