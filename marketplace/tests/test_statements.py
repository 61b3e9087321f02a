"""Statements and the tax year: FIFO realised gains (by hand and against a unit-by-unit
reference), periods, the monthly statement and tax summary read back from their PDF and
CSV against the books, and who may download what."""

import csv
import datetime
import io
import re
import uuid
from fractions import Fraction

import pytest
import time_machine
from django.urls import reverse
from hypothesis import given, settings
from hypothesis import strategies as st
from pypdf import PdfReader

from accounts.tests.factories import UserFactory
from chain.models import ChainTransaction
from compliance.models import AuditEntry, InvestorProfile, TaxProfile
from marketplace import distributions as dist
from marketplace import statement_views
from marketplace.models import Distribution, DistributionPayment, LedgerAccount, Trade
from marketplace.services import order_place, order_settlement_confirmed
from marketplace.statements import (
    Acquisition,
    Disposal,
    PeriodError,
    fifo_realised,
    investor_units_at,
    month_period,
    year_period,
)

from .factories import StaffFactory, verified_investor
from .test_distributions import declare
from .trading_helpers import confirm, place

UTC = datetime.UTC
A = LedgerAccount.Kind


def at(day, hour=12, month=1, year=2025):
    return datetime.datetime(year, month, day, hour, tzinfo=UTC)


# FIFO: pure ------------------------------------------------------------------------------------


def test_fifo_by_hand_splits_lots_with_floors_and_shows_a_loss_as_negative():
    lots = [
        Acquisition(at(1), 10, 1_000, "A"),  # 100 a unit
        Acquisition(at(2), 3, 100, "B"),  # 33⅓ a unit
    ]
    sales = [
        Disposal(at(3), 4, 600, "s1"),
        Disposal(at(4), 7, 500, "s2"),
        Disposal(at(5), 2, 70, "s3"),
    ]
    rows = fifo_realised(lots, sales)
    # s1: the first 4 of A cost floor(1000·4/10) = 400.
    # s2: the other 6 of A cost 1000 − 400 = 600, and the first of B floor(100·1/3) = 33.
    # s3: the last 2 of B cost 100 − 33 = 67: B's whole cost is used once B is sold out.
    assert [(r.disposal.ref, r.cost_minor, r.gain_minor) for r in rows] == [
        ("s1", 400, 200),
        ("s2", 633, -133),
        ("s3", 67, 3),
    ]
    assert [(s.ref, s.units, s.cost_minor) for s in rows[1].lots] == [("A", 6, 600), ("B", 1, 33)]
    assert sum(r.cost_minor for r in rows) == 1_100 and all(r.uncovered_units == 0 for r in rows)


def test_fifo_uses_only_lots_acquired_by_the_sale_and_flags_what_it_cannot_cover():
    lots = [Acquisition(at(1), 5, 500, "early"), Acquisition(at(9), 5, 5_000, "late")]
    rows = fifo_realised(lots, [Disposal(at(5), 7, 1_400, "sale")])
    (row,) = rows
    # The lot bought after the sale is not used: 2 units have no acquisition before it.
    assert row.uncovered_units == 2 and row.cost_minor == 500 and row.gain_minor == 900
    # A lot acquired at the same instant as the sale is available to it.
    (same,) = fifo_realised([Acquisition(at(5), 1, 10)], [Disposal(at(5), 1, 15)])
    assert same.uncovered_units == 0 and same.gain_minor == 5


def test_fifo_refuses_empty_lots_and_sales():
    with pytest.raises(ValueError):
        fifo_realised([Acquisition(at(1), 0, 10)], [])
    with pytest.raises(ValueError):
        fifo_realised([Acquisition(at(1), 1, 10)], [Disposal(at(2), 0, 10)])


def _reference(lots, sales):
    """Every lot expanded to single units with exact Fraction costs, popped in time order."""
    events = sorted([(a.at, 0, a.seq, a) for a in lots] + [(d.at, 1, d.seq, d) for d in sales], key=lambda e: e[:3])
    queue: list[Fraction] = []
    costs = {}
    for _, kind, _, item in events:
        if kind == 0:
            queue.extend([Fraction(item.cost_minor, item.units)] * item.units)
        else:
            costs[item.ref] = sum((queue.pop(0) for _ in range(item.units)), Fraction(0))
    return costs


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.booleans(),  # acquire or dispose
            st.integers(min_value=1, max_value=40),  # units
            st.integers(min_value=0, max_value=10**9),  # cost or proceeds
            st.integers(min_value=0, max_value=2),  # minutes after the previous event (ties allowed)
        ),
        max_size=40,
    ),
    st.booleans(),
)
def test_fifo_matches_a_unit_by_unit_reference_within_one_minor_unit(raw, sell_out):
    clock = datetime.datetime(2025, 1, 1, tzinfo=UTC)
    lots, sales, held = [], [], 0
    for i, (acquire, units, amount, gap) in enumerate(raw):
        clock += datetime.timedelta(minutes=gap)
        if acquire:
            lots.append(Acquisition(clock, units, amount, f"lot{i}", seq=i))
            held += units
        elif held:
            # Never more than held (acquisitions at the same instant come first, as in fifo_realised).
            n = min(units, held)
            sales.append(Disposal(clock, n, amount, f"sale{i}", seq=i))
            held -= n
    if sell_out and held:
        clock += datetime.timedelta(minutes=1)
        sales.append(Disposal(clock, held, 1, "last", seq=len(raw)))
    rows = fifo_realised(lots, sales)
    reference = _reference(lots, sales)
    ours_so_far, exact_so_far = 0, Fraction(0)
    for row in rows:
        assert row.uncovered_units == 0
        assert sum(s.units for s in row.lots) == row.units
        ours_so_far += row.cost_minor
        exact_so_far += reference[row.disposal.ref]
        # Only the lot at the head of the queue is ever partly sold, and its floor is at most
        # one minor unit below its exact share: the running totals stay within one.
        assert 0 <= exact_so_far - ours_so_far < 1
    gains = sum(r.gain_minor for r in rows)
    exact_gains = sum(d.proceeds_minor - reference[d.ref] for d in sales)
    assert 0 <= gains - exact_gains < 1
    if sum(d.units for d in sales) == sum(a.units for a in lots):  # every lot used up: exact
        assert gains == exact_gains and ours_so_far == sum(a.cost_minor for a in lots)


# periods -----------------------------------------------------------------------------------------

NOW = datetime.datetime(2026, 3, 15, 9, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("year", "month"), [(2026, 13), (2026, 0), (0, 1), (99999, 1), (1999, 12), (2026, 4), (2027, 1), (10**30, 1)]
)
def test_months_outside_the_range_are_refused(year, month):
    with pytest.raises(PeriodError):
        month_period(year=year, month=month, now=NOW)


def test_periods_are_utc_months_and_the_current_one_runs_to_now():
    feb = month_period(year=2026, month=2, now=NOW)
    assert (feb.start, feb.end, feb.to_date) == (at(1, 0, 2, 2026), at(1, 0, 3, 2026), False)
    assert feb.last_day == datetime.date(2026, 2, 28)
    march = month_period(year=2026, month=3, now=NOW)
    assert march.end == NOW and march.to_date and "to 15 March 2026" in march.label
    december = month_period(year=2025, month=12, now=NOW)
    assert december.end == at(1, 0, 1, 2026)
    assert year_period(year=2026, now=NOW).end == NOW
    for year in (0, 1999, 2027):
        with pytest.raises(PeriodError):
            year_period(year=year, now=NOW)


# the books of two months -------------------------------------------------------------------------

JAN = datetime.datetime(2025, 1, 10, 10, tzinfo=UTC)
FEB_SALE_1 = datetime.datetime(2025, 2, 10, 10, tzinfo=UTC)
FEB_SALE_2 = datetime.datetime(2025, 2, 12, 10, tzinfo=UTC)
FEB_INCOME = datetime.datetime(2025, 2, 20, 10, tzinfo=UTC)
HOSTILE_NAME = '=HYPERLINK("http://x") <b>Harbour</b> & Co'


def _confirm_order(order):
    tx = order.chain_tx
    ChainTransaction.objects.filter(pk=tx.pk).update(status="confirmed", confirmed_round=7, txid="T" * 52)
    tx.refresh_from_db()
    order_settlement_confirmed(tx)


def _paid(distribution, staff, approver, reference):
    dist.distribution_approve(distribution=distribution, actor=approver)
    dist.distribution_fund(
        distribution=distribution,
        actor=staff,
        amount_minor=distribution.gross_minor,
        source=dist.FUND_BY_DEPOSIT,
        bank_reference=reference,
    )
    dist.distribution_pay(distribution=distribution, actor=staff)


@pytest.fixture
def books(offering, fund, staff):
    """Ada buys 10 fractions in January 2025 (100.00 each, fee 1.5 %: 1,015.00), sells 4 at
    110.00 (maker, fee 0.10 %) and 3 at 90.00 (taker, 0.25 %) to Bob in February, and
    receives rent and a return of capital on her 3 remaining units (15 % withheld, DE with a
    treaty form). Bob is frozen before the income: his payouts are held."""
    asset = offering.asset
    asset.name = HOSTILE_NAME
    asset.save(update_fields=["name"])
    approver = StaffFactory()
    with time_machine.travel(JAN, tick=False):
        ada = verified_investor(full_name="Ada Lovelace")
        TaxProfile.objects.create(user=ada, tax_residence="DE", treaty_form_on_file=True)
        fund(ada, 1_000_000)
        order = order_place(investor=ada, offering_id=offering.pk, quantity=10, idempotency_key=uuid.uuid4().hex)
        _confirm_order(order)
    with time_machine.travel(FEB_SALE_1, tick=False):
        bob = verified_investor(full_name="Bob Byte")
        fund(bob, 1_000_000)
        place(ada, asset, "sell", 4, 11_000)
        place(bob, asset, "buy", 4, 11_000)
        confirm(Trade.objects.get(seller=ada, price_minor=11_000))
    with time_machine.travel(FEB_SALE_2, tick=False):
        place(bob, asset, "buy", 3, 9_000)
        place(ada, asset, "sell", 3, 9_000)
    with time_machine.travel(FEB_INCOME, tick=False):
        InvestorProfile.objects.update_or_create(user=bob, defaults={"frozen": True})
        rent = declare(asset, staff, gross=1_000_000)
        _paid(rent, staff, approver, "RENT-FEB")
        capital = declare(asset, staff, gross=2_000_000, kind=Distribution.Kind.RETURN_OF_CAPITAL)
        _paid(capital, staff, approver, "ROC-FEB")
    return {"ada": ada, "bob": bob, "asset": asset, "order": order, "staff": staff}


@pytest.fixture(autouse=True)
def own_rate_limit_key(monkeypatch):
    """Each test counts its PDFs apart (the cache outlives the test database)."""
    run = uuid.uuid4().hex
    monkeypatch.setattr(statement_views, "client_key", lambda request: f"statements-test-{run}-{request.user.pk}")


def pdf_text(response, currency="EUR") -> str:
    assert response.status_code == 200, response.content[:500]
    assert response["Content-Type"] == "application/pdf"
    reader = PdfReader(io.BytesIO(response.content))
    pages = [page.extract_text() for page in reader.pages]
    for number, text in enumerate(pages, start=1):
        assert f"Page {number} of {len(pages)}" in text
        assert "cost basis includes fees" in text and f"amounts in {currency}" in text
    return "\n".join(pages)


def figure(text: str, label: str) -> int:
    """The amount printed after `label`, in minor units."""
    match = re.search(re.escape(label) + r"\s+(-?[\d,]+)\.(\d\d)", text)
    assert match, f"{label!r} not in the PDF"
    major, cents = match.group(1).replace(",", ""), int(match.group(2))
    return int(major) * 100 + (-cents if major.startswith("-") else cents)


def ledger_cash(user) -> int:
    return sum(
        a.balance
        for a in LedgerAccount.objects.filter(
            user=user, currency="EUR", kind__in=[A.INVESTOR_AVAILABLE, A.INVESTOR_HELD]
        )
    )


def csv_rows(response) -> list[dict]:
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(response.content.decode())))


@pytest.mark.django_db
def test_positions_at_past_dates_come_from_the_unit_history(books):
    ada, asset = books["ada"], books["asset"]
    assert investor_units_at(investor_id=ada.pk, at=JAN - datetime.timedelta(seconds=1)) == {}
    assert investor_units_at(investor_id=ada.pk, at=FEB_SALE_1 - datetime.timedelta(seconds=1)) == {asset.pk: 10}
    assert investor_units_at(investor_id=ada.pk, at=FEB_SALE_1) == {asset.pk: 6}
    assert investor_units_at(investor_id=ada.pk, at=FEB_INCOME) == {asset.pk: 3}
    assert dist.units_at(asset_id=asset.pk, at=FEB_SALE_1)[ada.pk] == 6  # the same rule


@pytest.mark.django_db
def test_monthly_statements_read_back_from_the_pdf_match_the_books(client, books):
    ada = books["ada"]
    client.force_login(ada)

    january = pdf_text(client.get(reverse("marketplace:statement_month_pdf", args=[2025, 1])))
    assert "RWA Marketplace" in january and "Monthly statement" in january
    assert "Ada Lovelace" in january and ada.email in january and "January 2025" in january
    assert figure(january, "Opening cash balance") == 0
    assert figure(january, "Closing cash balance") == 1_000_000 - 101_500
    assert figure(january, "Fees paid") == 1_500
    assert "<b>Harbour</b> & Co" in january  # escaped, not read as markup
    assert "offering price" in january  # no trade or valuation by 31 January

    february = pdf_text(client.get(reverse("marketplace:statement_month_pdf", args=[2025, 2])))
    assert figure(february, "Opening cash balance") == 1_000_000 - 101_500
    # Nothing moved Ada's cash after February: its closing is today's ledger.
    assert figure(february, "Closing cash balance") == ledger_cash(ada)
    payments = DistributionPayment.objects.filter(investor=ada, treasury=False)
    assert payments.count() == 2 and all(p.withheld_minor > 0 for p in payments)
    assert figure(february, "Distributions received, net") == sum(p.net_minor for p in payments)
    assert figure(february, "Fees paid") == 44 + 67  # 0.10 % of 440.00, 0.25 % of 270.00 (floored)
    assert figure(february, "Value of positions at opening") == 10 * 10_000  # the offering price
    assert figure(february, "Value of positions at closing") == 3 * 9_000  # the last trade
    assert "last trade" in february

    # The current month, to date: no movement, the ledger's balance.
    today = datetime.datetime.now(UTC)
    current = pdf_text(client.get(reverse("marketplace:statement_month_pdf", args=[today.year, today.month])))
    assert figure(current, "Closing cash balance") == figure(current, "Opening cash balance") == ledger_cash(ada)


@pytest.mark.django_db
def test_the_monthly_csv_has_every_section_in_decimal_strings_and_no_formulas(client, books):
    ada = books["ada"]
    client.force_login(ada)
    response = client.get(reverse("marketplace:statement_month_csv", args=[2025, 2]))
    assert response["Content-Disposition"] == 'attachment; filename="rwa-statement-2025-02.csv"'
    rows = csv_rows(response)
    sections = {r["section"] for r in rows}
    assert {"position_opening", "position_closing", "cash_opening", "cash_movement", "cash_closing"} <= sections
    assert {"trade", "fees_total", "distribution"} <= sections
    assert all(r["currency"] == "EUR" for r in rows)
    closing = next(r for r in rows if r["section"] == "cash_closing")
    assert closing["balance"] == f"{ledger_cash(ada) // 100}.{ledger_cash(ada) % 100:02d}"
    movements = [r for r in rows if r["section"] == "cash_movement"]
    opening = next(r for r in rows if r["section"] == "cash_opening")
    total = sum(Fraction(r["amount"]) for r in movements)
    assert Fraction(opening["balance"]) + total == Fraction(closing["balance"])
    sales = [r for r in rows if r["section"] == "trade"]
    assert [(r["side_or_kind"], r["quantity"], r["fee"], r["amount"]) for r in sales] == [
        ("sold", "4", "0.44", "439.56"),
        ("sold", "3", "0.67", "269.33"),
    ]
    for r in rows:
        if r["asset"]:
            assert r["asset"].startswith("'=")  # CSV formula injection guarded
    assert next(r for r in rows if r["section"] == "fees_total")["fee"] == "1.11"


@pytest.mark.django_db
def test_tax_summary_realised_gain_is_the_hand_computed_fifo(client, books):
    ada = books["ada"]
    client.force_login(ada)
    # Lot: 10 units for 1,000.00 + 15.00 fee = 101,500 minor.
    # Sale 1: 4 at 110.00, fee 0.44 → 43,956; cost floor(101,500 × 4 / 10) = 40,600; gain 3,356.
    # Sale 2: 3 at 90.00, fee 0.67 → 26,933; cost floor(101,500 × 7 / 10) − 40,600 = 30,450; loss −3,517.
    expected = (43_956 - 40_600) + (26_933 - 30_450)
    assert expected == -161
    text = pdf_text(client.get(reverse("marketplace:tax_year_pdf", args=[2025])))
    assert "Annual tax summary" in text and "Ada Lovelace" in text
    assert figure(text, "Net realised gain/loss") == expected
    assert figure(text, "Gains") == 3_356 and figure(text, "Losses") == -3_517
    assert figure(text, "Cost basis of units sold (incl. fees)") == 71_050
    assert "Cost basis includes fees" in text
    payments = DistributionPayment.objects.filter(investor=ada, treasury=False).select_related("distribution")
    rent = next(p for p in payments if p.distribution.kind == Distribution.Kind.RENT)
    capital = next(p for p in payments if p.distribution.kind == Distribution.Kind.RETURN_OF_CAPITAL)
    assert figure(text, "Income received, gross") == rent.gross_minor
    assert figure(text, "Capital returned, gross") == capital.gross_minor
    assert figure(text, "Total withheld") == rent.withheld_minor + capital.withheld_minor

    rows = csv_rows(client.get(reverse("marketplace:tax_year_csv", args=[2025])))
    income = [r for r in rows if r["section"] == "income"]
    returned = [r for r in rows if r["section"] == "capital_returned"]
    assert [(r["kind"], r["gross"]) for r in income] == [("rent", f"{rent.gross_minor / 100:.2f}")]
    assert [r["kind"] for r in returned] == ["return_of_capital"]
    realised = [r for r in rows if r["section"] == "realised"]
    assert [(r["quantity"], r["cost_basis_incl_fees"], r["gain_or_loss"]) for r in realised] == [
        ("4", "406.00", "33.56"),
        ("3", "304.50", "-35.17"),
    ]
    assert next(r for r in rows if r["section"] == "realised_total")["gain_or_loss"] == "-1.61"
    # The year before has nothing.
    assert "No income and no sales" in pdf_text(
        client.get(reverse("marketplace:tax_year_pdf", args=[2024])), currency="—"
    )


@pytest.mark.django_db
def test_a_held_payout_is_listed_with_its_reason(client, books):
    bob = books["bob"]
    client.force_login(bob)
    text = pdf_text(client.get(reverse("marketplace:statement_month_pdf", args=[2025, 2])))
    assert "Distribution payouts held" in text and "frozen" in text.lower()
    assert figure(text, "Distributions received, net") == 0
    assert books["ada"].email not in text
    rows = csv_rows(client.get(reverse("marketplace:statement_month_csv", args=[2025, 2])))
    held = [r for r in rows if r["section"] == "held_payout"]
    assert len(held) == 2 and all(r["description"] for r in held)
    # Bob's own purchases appear as buys with the buyer's fee in the cost.
    bought = [r for r in rows if r["section"] == "trade"]
    assert {r["side_or_kind"] for r in bought} == {"bought"}


# who may download what ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_index_lists_months_from_the_first_activity_and_the_years(client, books):
    ada = books["ada"]
    client.force_login(ada)
    response = client.get(reverse("marketplace:statements"))
    assert response.status_code == 200
    body = response.content.decode()
    assert 'data-month="2025-01"' in body and 'data-month="2024-12"' not in body
    today = datetime.datetime.now(UTC)
    assert f'data-month="{today.year}-{today.month:02d}"' in body
    assert 'data-year="2025"' in body and f'data-year="{today.year}"' in body
    assert reverse("marketplace:statement_month_pdf", args=[2025, 1]) in body
    assert reverse("marketplace:tax_year_csv", args=[2025]) in body
    # Someone without any activity has none listed.
    client.force_login(verified_investor())
    assert "No statements yet" in client.get(reverse("marketplace:statements")).content.decode()


@pytest.mark.django_db
def test_downloads_are_private_attachments(client, books):
    client.force_login(books["ada"])
    response = client.get(reverse("marketplace:tax_year_pdf", args=[2025]))
    assert response["Content-Disposition"] == 'attachment; filename="rwa-tax-summary-2025.pdf"'
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Cache-Control"] == "private, no-store"


@pytest.mark.django_db
def test_each_investor_sees_only_their_own_and_staff_need_the_ledger_permission(client, books):
    ada, bob, staff = books["ada"], books["bob"], books["staff"]
    own = reverse("marketplace:investor_statements", args=[ada.pk])
    urls = [
        own,
        reverse("marketplace:investor_statement_month_pdf", args=[ada.pk, 2025, 2]),
        reverse("marketplace:investor_statement_month_csv", args=[ada.pk, 2025, 2]),
        reverse("marketplace:investor_tax_year_pdf", args=[ada.pk, 2025]),
        reverse("marketplace:investor_tax_year_csv", args=[ada.pk, 2025]),
    ]
    client.force_login(bob)
    for url in urls:
        assert client.get(url).status_code == 404
    # Bob's own statement never shows Ada's.
    text = pdf_text(client.get(reverse("marketplace:statement_month_pdf", args=[2025, 2])))
    assert "Bob Byte" in text and "Ada Lovelace" not in text
    # Staff without the back office's ledger permission: 404 as well.
    client.force_login(UserFactory(is_staff=True))
    for url in urls:
        assert client.get(url).status_code == 404
    # Staff with it read Ada's, and each download is audited.
    client.force_login(staff)
    assert client.get(own).status_code == 200
    assert "Ada Lovelace" in pdf_text(client.get(urls[1]))
    assert csv_rows(client.get(urls[4]))[0]["section"]
    audited = AuditEntry.objects.filter(action="statement.downloaded", actor_id=staff.pk, target_id=str(ada.pk))
    assert audited.count() == 2
    assert client.get(reverse("marketplace:investor_statements", args=[10**9])).status_code == 404


@pytest.mark.django_db
def test_staff_need_their_second_factor_for_the_statements_when_it_is_required(client, books, settings):
    settings.STAFF_MFA_REQUIRED = True
    client.force_login(books["staff"])  # no authenticator, no second factor in this session
    assert client.get(reverse("marketplace:investor_statements", args=[books["ada"].pk])).status_code == 404


@pytest.mark.django_db
def test_anonymous_visitors_are_sent_to_sign_in(client):
    for url in (
        reverse("marketplace:statements"),
        reverse("marketplace:statement_month_pdf", args=[2025, 1]),
        reverse("marketplace:tax_year_csv", args=[2025]),
        reverse("marketplace:investor_statements", args=[1]),
    ):
        response = client.get(url)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path",
    [
        "/market/statements/2025/13.pdf",
        "/market/statements/2025/0.csv",
        "/market/statements/0/1.pdf",
        "/market/statements/99999/1.pdf",
        "/market/statements/99999999999999999999999999/1.pdf",
        "/market/statements/1999/12.csv",
        "/market/statements/2025/-1.pdf",
        "/market/statements/2025/1.exe",
        "/market/statements/2025/1.pdf/../../tax/2025.pdf%00",
        "/market/statements/x/1.pdf",
        "/market/tax/0.pdf",
        "/market/tax/99999.csv",
        "/market/tax/2025.html",
        "/market/statements/investor/abc/",
    ],
)
def test_hostile_or_out_of_range_paths_are_404(client, path):
    client.force_login(verified_investor())
    assert client.get(path).status_code == 404


@pytest.mark.django_db
def test_a_future_month_and_year_are_404(client):
    client.force_login(verified_investor())
    later = datetime.datetime.now(UTC) + datetime.timedelta(days=40)
    assert client.get(reverse("marketplace:statement_month_pdf", args=[later.year, later.month])).status_code == 404
    assert client.get(reverse("marketplace:tax_year_csv", args=[later.year + 1])).status_code == 404


@pytest.mark.django_db
def test_pdf_generation_is_rate_limited(client, monkeypatch):
    monkeypatch.setattr(statement_views, "PDF_RATE", (2, 60))
    client.force_login(verified_investor())
    url = reverse("marketplace:tax_year_pdf", args=[2025])
    assert [client.get(url).status_code for _ in range(3)] == [200, 200, 429]
    # The CSV is cheap and not counted.
    assert client.get(reverse("marketplace:tax_year_csv", args=[2025])).status_code == 200


@pytest.mark.django_db
def test_each_currency_has_its_own_section_and_footer(client, fund):
    investor = verified_investor()
    fund(investor, 123_456, "EUR")
    fund(investor, 7_890, "USD")
    client.force_login(investor)
    today = datetime.datetime.now(UTC)
    response = client.get(reverse("marketplace:statement_month_pdf", args=[today.year, today.month]))
    assert response.status_code == 200
    pages = [page.extract_text() for page in PdfReader(io.BytesIO(response.content)).pages]
    assert len(pages) == 2
    assert "amounts in EUR" in pages[0] and figure(pages[0], "Closing cash balance") == 123_456
    assert "amounts in USD" in pages[1] and figure(pages[1], "Closing cash balance") == 7_890
    assert "Page 2 of 2" in pages[1]
    rows = csv_rows(client.get(reverse("marketplace:statement_month_csv", args=[today.year, today.month])))
    closing = {r["currency"]: r["balance"] for r in rows if r["section"] == "cash_closing"}
    assert closing == {"EUR": "1234.56", "USD": "78.90"}
