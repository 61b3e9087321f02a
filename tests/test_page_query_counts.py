"""Every GET page of the site, requested as the user it is for, sends as many queries
with more data as with little (issue 18: no per-row queries). One site is built, every
page is requested once to warm it and once counted; the data then grows (more assets,
orders, holdings, trades, cash movements, distributions, payout accounts, endpoints,
tokens, and so more rows in every back-office list) and every page is counted again.

The pages are the site's URL patterns (each one measured here or excluded below with
the reason, so a new page cannot be forgotten) and, in the back office, the list and the
change page of every registered model. Per-page tests elsewhere pin some of these with
their own data (grep assert_num_queries / CaptureQueriesContext); this one covers all."""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from django.contrib import admin
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from accounts.models import User
from api.services import api_token_create
from assets.models import Asset
from assets.tests.factories import IssuerFactory, make_document, make_image
from chain.services import platform_accounts_ensure
from compliance.models import KycApplication
from marketplace import services
from marketplace.models import DistributionPayment, Offering, PrimaryOrder, Trade
from marketplace.tests.factories import OfferingFactory, StaffFactory, usable_payout_account, verified_investor
from marketplace.tests.test_distributions import declare
from marketplace.tests.test_orders import confirm as confirm_order
from marketplace.tests.trading_helpers import confirm as confirm_trade
from marketplace.tests.trading_helpers import give_units, place
from marketplace.trading import market_open
from webhooks.services import endpoint_create

pytestmark = pytest.mark.django_db

# URL names not measured here, and why. Everything else must be in PAGES.
NOT_MEASURED = {
    # Writes (POST only): no page to count.
    "marketplace:order_place": "POST",
    "marketplace:withdrawal_create": "POST",
    "marketplace:payout_account_remove": "POST",
    "marketplace:trade_order_place": "POST",
    "marketplace:trade_order_cancel": "POST",
    "marketplace:reinvestment_update": "POST",
    "marketplace:distribution_cancel": "POST",
    "webhooks:disable": "POST",
    "webhooks:enable": "POST",
    "webhooks:delete": "POST",
    "api:token_revoke": "POST",
    "assets:document_delete": "POST",
    "assets:image_delete": "POST",
    "assets:submit": "POST",
    "assets:document_upload": "POST",
    "assets:image_upload": "POST",
    "marketplace:payout_account_add": "POST",
    # They read algod (one object each; no list of ours grows): chain/tests cover them.
    "marketplace:holding_chain_check": "reads algod",
    "assets:verify": "reads algod",
    "chain:tx": "reads algod",
    "chain:asset": "reads algod",
    "readyz": "checks the services (algod, broker): config/tests/test_health.py",
    # One private file of the investor's own KYC application: one row, no list.
    "compliance:kyc_document": "one file",
    # The API pins its own counts with growing data: api/tests/test_queries.py.
    "api-v1:*": "api/tests/test_queries.py",
    # allauth's pages (sign-in, sign-up, e-mail, password, 2FA): forms that read the
    # signed-in user's own few rows, none of the data that grows.
    "account_*": "allauth",
    "mfa_*": "allauth",
}

# Pages whose count still grows with the data, each for a reason outside this change
# (docs/benchmarks.md, "scaling"). The test checks they still grow, so fixing one fails
# it until its entry is removed here.
KNOWN_GROWING: dict[str, str] = {}


@dataclass
class Site:
    """The data the pages show, grown a unit at a time."""

    staff: User
    issuer: User
    investor: User
    other: User
    main: Offering  # the offering whose asset every order book row is on
    first: dict = field(default_factory=dict)  # rows of the first unit, whose pages are counted
    n: int = 0

    def fund(self, user, amount_minor: int) -> None:
        services.deposit_record(
            investor=user,
            amount_minor=amount_minor,
            currency="EUR",
            bank_reference=f"QC-{user.pk}-{uuid.uuid4().hex[:8]}",
            actor=self.staff,
        )

    def grow(self, units: int) -> None:
        for _ in range(units):
            self.n += 1
            self._unit()

    def _unit(self) -> None:
        n, investor, other, main = self.n, self.investor, self.other, self.main.asset
        offering: Offering = OfferingFactory.create(asset__issuer=self.issuer)
        asset = offering.asset
        document = make_document(asset, title=f"Appraisal {n}", public_to_investors=True)
        image = make_image(asset, caption=f"Photo {n}")
        market_open(asset=asset)
        Asset.objects.filter(pk=asset.pk).update(metadata_json='{"name": "ARC-3"}')  # as minting leaves it
        self.fund(investor, 1_000_000)
        order = services.order_place(investor=investor, offering_id=offering.pk, quantity=2, idempotency_key=f"q{n}")
        confirm_order(order)
        give_units(other, main, 100 * n)
        bid = place(investor, main, "buy", 1, 9_000 - n)  # an open bid of the investor
        place(other, main, "sell", 1, 11_000 + n)  # an open ask
        place(other, main, "sell", 1, 10_000)  # rests; the investor buys it next
        place(investor, main, "buy", 1, 10_000)  # a trade, the investor buying
        trade = Trade.objects.filter(buyer=investor).order_by("-pk")[0]
        confirm_trade(trade)
        payout = usable_payout_account(investor)
        services.withdrawal_request(investor=investor, amount_minor=1_000, currency="EUR", payout_account=payout)
        endpoint, _ = endpoint_create(user=investor, url=f"https://hooks.example.com/{n}", events=["trade.settled"])
        api_token_create(
            user=investor, name=f"token {n}", scopes=["read"], expires_at=timezone.now() + datetime.timedelta(days=30)
        )
        distribution = declare(asset, self.issuer, gross=50_000)
        DistributionPayment.objects.create(
            distribution=distribution,
            investor=investor,
            units=2,
            gross_minor=50,
            net_minor=50,
            status=DistributionPayment.Status.PAID,
            paid_at=timezone.now(),
        )
        if not self.first:
            self.first = {
                "asset": asset,
                "offering": offering,
                "document": document,
                "image": image,
                "order": order,
                "trade_order": bid,
                "trade": trade,
                "endpoint": endpoint,
            }


@pytest.fixture
def site(settings):
    settings.MARKETPLACE_PRICE_BAND_PCT = 1000  # book levels far from the last trade
    settings.MARKETPLACE_TRADE_ORDER_RATE = (1000, 60)
    settings.MARKETPLACE_ORDER_RATE_LIMIT = (1000, 60)
    platform_accounts_ensure()
    staff = StaffFactory()
    issuer = IssuerFactory()
    main = OfferingFactory(asset__issuer=issuer)
    market_open(asset=main.asset)
    built = Site(staff=staff, issuer=issuer, investor=verified_investor(), other=verified_investor(), main=main)
    built.fund(built.other, 100_000_000)
    return built


# -- the pages -----------------------------------------------------------------------------

Page = tuple[str, str]  # (who: anon, investor, issuer or staff; path)
HTMX = {"HTTP_HX_REQUEST": "true"}


def _pages(s: Site) -> dict[str, Page]:
    f, main = s.first, s.main.asset
    year, month = timezone.localdate().year, timezone.localdate().month
    user = s.investor.pk
    r = reverse
    return {
        "home": ("anon", r("home")),
        "favicon": ("anon", r("favicon")),
        "healthz": ("anon", r("healthz")),
        "metrics": ("anon", r("metrics")),
        "assets:catalogue": ("anon", r("assets:catalogue")),
        "assets:detail": ("investor", r("assets:detail", args=[f["asset"].public_id])),
        "assets:arc3": ("anon", r("assets:arc3", args=[f["asset"].public_id.hex])),
        "assets:document": ("investor", r("assets:document", args=[f["document"].public_id])),
        "assets:document_preview": ("investor", r("assets:document_preview", args=[f["document"].public_id])),
        "assets:image": ("anon", r("assets:image", args=[f["image"].public_id])),
        "assets:image_thumbnail": ("anon", r("assets:image_thumbnail", args=[f["image"].public_id])),
        "assets:issuer_dashboard": ("issuer", r("assets:issuer_dashboard")),
        "assets:create": ("issuer", r("assets:create")),
        "assets:manage": ("issuer", r("assets:manage", args=[f["asset"].public_id])),
        "assets:edit": ("issuer", r("assets:edit", args=[f["asset"].public_id])),
        "accounts:profile": ("investor", r("accounts:profile")),
        "api:tokens": ("investor", r("api:tokens")),
        "webhooks:endpoints": ("investor", r("webhooks:endpoints")),
        "webhooks:endpoint": ("investor", r("webhooks:endpoint", args=[f["endpoint"].public_id])),
        "compliance:dashboard_moved": ("investor", r("compliance:dashboard_moved")),
        "compliance:kyc_edit": ("investor", r("compliance:kyc_edit")),
        "compliance:kyc_detail": (
            "investor",
            r("compliance:kyc_detail", args=[KycApplication.objects.get(user=s.investor).public_id]),
        ),
        "marketplace:dashboard": ("investor", r("marketplace:dashboard")),
        "marketplace:offering": ("investor", r("marketplace:offering", args=[f["asset"].public_id])),
        "marketplace:quote": ("investor", r("marketplace:quote", args=[f["asset"].public_id]) + "?quantity=2"),
        "marketplace:order": ("investor", r("marketplace:order", args=[f["order"].public_id])),
        "marketplace:portfolio": ("investor", r("marketplace:portfolio")),
        "marketplace:portfolio_csv": ("investor", r("marketplace:portfolio_csv")),
        "marketplace:add_funds": ("investor", r("marketplace:add_funds")),
        "marketplace:payout_accounts": ("investor", r("marketplace:payout_accounts")),
        "marketplace:asset_trade": ("investor", r("marketplace:asset_trade", args=[main.public_id])),
        "marketplace:trade_market_data": ("investor", r("marketplace:trade_market_data", args=[main.public_id])),
        "marketplace:trade_mine": ("investor", r("marketplace:trade_mine", args=[main.public_id])),
        "marketplace:trade_quote": (
            "investor",
            r("marketplace:trade_quote", args=[main.public_id]) + "?side=buy&quantity=1&limit_price=95.00",
        ),
        "marketplace:trade_order": ("investor", r("marketplace:trade_order", args=[f["trade_order"].public_id])),
        "marketplace:trade_order_modify": (
            "investor",
            r("marketplace:trade_order_modify", args=[f["trade_order"].public_id]),
        ),
        "marketplace:trade": ("investor", r("marketplace:trade", args=[f["trade"].public_id])),
        "marketplace:asset_chart": ("anon", r("marketplace:asset_chart", args=[main.public_id])),
        "marketplace:asset_market_data_json": ("anon", r("marketplace:asset_market_data_json", args=[main.public_id])),
        "marketplace:valuation_submit": ("issuer", r("marketplace:valuation_submit", args=[f["asset"].public_id])),
        "marketplace:distributions": ("investor", r("marketplace:distributions")),
        "marketplace:distribution_declare": (
            "issuer",
            r("marketplace:distribution_declare", args=[f["asset"].public_id]),
        ),
        "marketplace:statements": ("investor", r("marketplace:statements")),
        "marketplace:statement_month_pdf": ("investor", r("marketplace:statement_month_pdf", args=[year, month])),
        "marketplace:statement_month_csv": ("investor", r("marketplace:statement_month_csv", args=[year, month])),
        "marketplace:tax_year_pdf": ("investor", r("marketplace:tax_year_pdf", args=[year])),
        "marketplace:tax_year_csv": ("investor", r("marketplace:tax_year_csv", args=[year])),
        "marketplace:investor_statements": ("staff", r("marketplace:investor_statements", args=[user])),
        "marketplace:investor_statement_month_pdf": (
            "staff",
            r("marketplace:investor_statement_month_pdf", args=[user, year, month]),
        ),
        "marketplace:investor_statement_month_csv": (
            "staff",
            r("marketplace:investor_statement_month_csv", args=[user, year, month]),
        ),
        "marketplace:investor_tax_year_pdf": ("staff", r("marketplace:investor_tax_year_pdf", args=[user, year])),
        "marketplace:investor_tax_year_csv": ("staff", r("marketplace:investor_tax_year_csv", args=[user, year])),
    }


def _admin_pages() -> dict[str, Page]:
    """The list of every registered model and the change page of its first row."""
    pages = {}
    for model in admin.site._registry:
        opts = model._meta
        name = f"{opts.app_label}_{opts.model_name}"
        pages[f"admin:{name}_changelist"] = ("staff", reverse(f"admin:{name}_changelist"))
        first = model._default_manager.order_by("pk").first()
        if first is not None:
            pages[f"admin:{name}_change"] = ("staff", reverse(f"admin:{name}_change", args=[first.pk]))
    return pages


def _url_names(resolver=None, namespace: str = "") -> set[str]:
    names = set()
    for p in (resolver or get_resolver()).url_patterns:
        if isinstance(p, URLResolver):
            if p.namespace == "admin":
                continue
            inner = f"{namespace}:{p.namespace}" if namespace and p.namespace else (p.namespace or namespace)
            names |= _url_names(p, inner)
        elif isinstance(p, URLPattern) and p.name:
            names.add(f"{namespace}:{p.name}" if namespace else p.name)
    return names


def _excluded(name: str) -> bool:
    return name in NOT_MEASURED or any(key.endswith("*") and name.startswith(key[:-1]) for key in NOT_MEASURED)


def _count(clients: dict[str, Client], pages: dict[str, Page]) -> dict[str, tuple[int, int]]:
    """{page: (status, queries)}; each page requested once before it is counted (the
    session, caches and lazily created rows such as the payment reference)."""
    counts = {}
    for name, (who, path) in pages.items():
        clients[who].get(path)
        with CaptureQueriesContext(connection) as ctx:
            status = clients[who].get(path).status_code
        counts[name] = (status, len(ctx.captured_queries))
    return counts


def test_every_page_of_the_site_is_counted_or_excluded_with_a_reason(site):
    site.grow(1)
    measured = set(_pages(site))
    names = _url_names()
    assert not {n for n in names if n not in measured and not _excluded(n)}, "a page neither counted nor excluded"
    assert not measured - names, "a counted page that is no URL name any more"


def test_no_page_sends_more_queries_when_the_data_grows(site):
    clients = {who: Client() for who in ("anon", "investor", "issuer", "staff")}
    clients["investor"].force_login(site.investor)
    clients["issuer"].force_login(site.issuer)
    clients["staff"].force_login(site.staff)
    site.grow(1)
    pages: Callable[[], dict[str, Page]] = lambda: {**_pages(site), **_admin_pages()}  # noqa: E731
    few = _count(clients, pages())
    site.grow(3)
    many = _count(clients, pages())

    assert PrimaryOrder.objects.filter(investor=site.investor).count() == 4
    broken = {name: status for name, (status, _) in few.items() if status >= 400}
    assert not broken, f"pages that did not answer: {broken}"
    grew = {
        name: (few[name][1], many[name][1])
        for name in few
        if name in many and few[name][1] != many[name][1] and name not in KNOWN_GROWING
    }
    assert not grew, f"queries with 1 unit of data vs 4 units: {grew}"
    still = {name for name in KNOWN_GROWING if few[name][1] != many[name][1]}
    assert still == set(KNOWN_GROWING), f"fixed, remove from KNOWN_GROWING: {set(KNOWN_GROWING) - still}"
