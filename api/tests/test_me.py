"""The token owner's own data, from the same selectors as the pages: portfolio (the
portfolio page's split and cash), cash movements, primary orders, trade orders, trades,
distribution payments and the eligibility engine's answer."""

import uuid

import pytest
from django.utils import timezone

from marketplace.models import DistributionPayment, Holding
from marketplace.services import order_place
from marketplace.tests.test_distributions import declare
from marketplace.tests.trading_helpers import give_units, place

from .helpers import assert_problem

pytestmark = pytest.mark.django_db


def buy_primary(investor, offering, quantity=3):
    return order_place(investor=investor, offering_id=offering.pk, quantity=quantity, idempotency_key=uuid.uuid4().hex)


def test_portfolio_splits_units_and_shows_cash(alice, alice_api, offering, fund):
    fund(alice)
    buy_primary(alice, offering, 3)  # reserved: 3 pending units
    holding = Holding.objects.get(investor=alice)
    Holding.objects.filter(pk=holding.pk).update(quantity=10)
    place(alice, offering.asset, "sell", 4, 12_000)  # locks 4
    body = alice_api.get("/api/v1/me/portfolio").json()
    [line] = body["holdings"]
    assert line["asset"] == str(offering.asset.public_id)
    assert (line["settled"], line["pending"], line["locked_in_orders"], line["available_to_sell"]) == (10, 3, 4, 6)
    assert line["currency"] == "EUR"
    [eur] = body["cash"]
    total = 3 * 10_000 + 3 * 10_000 * 150 // 10_000
    assert eur == {"currency": "EUR", "available_minor": 1_000_000 - total, "held_minor": total}


def test_orders_and_cash_movements(alice, alice_api, offering, fund):
    fund(alice)
    order = buy_primary(alice, offering, 2)
    [row] = alice_api.get("/api/v1/me/orders").json()["items"]
    assert row["public_id"] == str(order.public_id) and row["status"] == "reserved" and row["txid"] is None
    assert row["total_minor"] == order.total_minor
    moves = alice_api.get("/api/v1/me/cash-movements").json()["items"]
    assert sum(m["amount_minor"] for m in moves) == 1_000_000  # the deposit, then moved from available to held
    assert {m["account"] for m in moves} == {"available", "held"}
    assert any(m["order"] == str(order.public_id) for m in moves)


def test_distribution_payments_are_the_investors_own(alice, bob, alice_api, offering, staff):
    distribution = declare(offering.asset, offering.asset.issuer, gross=50_000)
    for investor, units in ((alice, 10), (bob, 5)):
        DistributionPayment.objects.create(
            distribution=distribution,
            investor=investor,
            units=units,
            gross_minor=units * 5,
            net_minor=units * 5,
            status=DistributionPayment.Status.PAID,
            paid_at=timezone.now(),
        )
    DistributionPayment.objects.create(
        distribution=distribution, investor=alice, treasury=True, units=1, gross_minor=1, net_minor=1
    )
    [row] = alice_api.get("/api/v1/me/distributions").json()["items"]
    assert (row["units"], row["net_minor"], row["status"], row["currency"]) == (10, 50, "paid", "EUR")
    assert row["distribution"] == str(distribution.public_id) and row["hold_codes"] == []


def test_eligibility_answers_with_the_engines_codes(alice, alice_api, asset):
    url = "/api/v1/me/eligibility"
    ok = alice_api.get(url, {"asset": str(asset.public_id), "side": "buy", "quantity": "5"}).json()
    assert ok == {"allowed": True, "reason_codes": [], "reasons": []}
    asset.allowed_countries = ["DE"]
    asset.accreditation_required = True
    asset.save(update_fields=["allowed_countries", "accreditation_required"])
    refused = alice_api.get(url, {"asset": str(asset.public_id), "side": "buy", "quantity": "5"}).json()
    assert refused["allowed"] is False
    assert set(refused["reason_codes"]) == {"country_not_allowed", "accreditation_required"}
    assert all(r["message"] for r in refused["reasons"])
    # Selling is an exit: residence does not block it, but the units must be there.
    sell = alice_api.get(url, {"asset": str(asset.public_id), "side": "sell", "quantity": "5"}).json()
    assert sell["reason_codes"] == ["insufficient_holding"]
    give_units(alice, asset, 5)
    assert alice_api.get(url, {"asset": str(asset.public_id), "side": "sell", "quantity": "5"}).json()["allowed"]


def test_eligibility_of_an_unknown_asset_is_404(alice_api):
    response = alice_api.get("/api/v1/me/eligibility", {"asset": str(uuid.uuid4()), "side": "buy", "quantity": "1"})
    assert_problem(response, 404, "not-found")


def test_lists_are_only_the_owners(alice, bob, alice_api, bob_api, offering, fund):
    fund(alice)
    fund(bob)
    buy_primary(alice, offering, 1)
    place(alice, offering.asset, "buy", 1, 9_000)
    for path in ("/api/v1/me/orders", "/api/v1/me/trade-orders", "/api/v1/me/portfolio"):
        assert alice_api.get(path).json() != bob_api.get(path).json()
    assert bob_api.get("/api/v1/me/orders").json()["items"] == []
    assert bob_api.get("/api/v1/me/trade-orders").json()["items"] == []


def test_statements_list_and_download_as_csv_and_pdf_only_ones_own(alice, alice_api, bob_api, asset, fund):
    import io

    from django.utils import timezone
    from pypdf import PdfReader

    fund(alice)
    listed = alice_api.get("/api/v1/me/statements")
    assert listed.status_code == 200
    now = timezone.now()
    month = next(m for m in listed.json()["months"] if (m["year"], m["month"]) == (now.year, now.month))
    csv = alice_api.get(month["csv"])
    assert csv.status_code == 200 and csv["Content-Type"].startswith("text/csv")
    assert "Deposit" in csv.content.decode()
    pdf = alice_api.get(month["pdf"])
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf"
    assert alice.email in PdfReader(io.BytesIO(pdf.content)).pages[0].extract_text()
    tax = alice_api.get(listed.json()["years"][0]["csv"])
    assert tax.status_code == 200
    # Bob's token reads Bob's statements: his own month has no deposit of Alice's.
    assert "Deposit" not in bob_api.get(month["csv"]).content.decode()
    # Out of range, hostile, wrong format: problems, never a 500.
    assert alice_api.get("/api/v1/me/statements/2026/13?format=csv").status_code == 404
    assert alice_api.get("/api/v1/me/statements/99999/1?format=csv").status_code == 404
    assert alice_api.get(f"/api/v1/me/tax/{now.year}?format=exe").status_code == 422
