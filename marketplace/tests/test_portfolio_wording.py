"""The portfolio and order pages in the investor's words (issue 15, defect 8): one word for
one state ("Settled"), one line per business event in the cash movements with the ledger
lines on demand, and a cost basis that includes the fee and says so."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from marketplace.selectors import cash_events_for
from marketplace.services import order_place

from .factories import verified_investor
from .test_orders import confirm

pytestmark = pytest.mark.django_db


def _rows(html: str) -> list[str]:
    table = html.split('<table id="movements">')[1].split("</table>")[0]
    return table.split('<tr class="cash-event"')[1:]


def test_one_line_per_business_event_with_the_ledger_lines_on_demand(client, offering, investor, fund):
    fund(investor, 100_000)
    settled = order_place(investor=investor, offering_id=offering.pk, quantity=5, idempotency_key="a")
    confirm(settled, round_=55)
    order_place(investor=investor, offering_id=offering.pk, quantity=2, idempotency_key="b")  # not settled yet
    client.force_login(investor)

    html = client.get(reverse("marketplace:portfolio")).content.decode()
    rows = _rows(html)

    # deposit, settled purchase (reserve + settle: three ledger lines), reserved purchase: three lines
    assert [r.split('data-kind="')[1].split('"')[0] for r in rows] == ["purchase", "purchase", "deposit"]
    reserved, bought, deposit = rows
    assert "1,000.00 EUR" in deposit and "Deposit" in deposit
    assert "5 × " in bought and "Settled" in bought and "-507.50 EUR" in bought.split("<details>")[0]
    assert "3 ledger lines" in bought and "<details>" in bought
    assert "Purchase settled: paid to issuer and fee" in bought.split("<details>")[1]
    assert "2 × " in reserved and "Reserved" in reserved and "203.00 EUR held until it completes" in reserved
    # the internal account names are only in the details, never a column of their own
    assert "<th>Account</th>" not in html
    for row in rows:
        summary = row.split("<details>")[0]
        assert ">held<" not in summary and ">available<" not in summary


def test_cost_basis_includes_the_fee_and_says_so(client, offering, investor, fund):
    fund(investor, 100_000)
    confirm(order_place(investor=investor, offering_id=offering.pk, quantity=5, idempotency_key="a"))
    client.force_login(investor)
    html = client.get(reverse("marketplace:portfolio")).content.decode()
    assert "Cost basis <small" in html and "(incl. fees)" in html
    row = html.split('<tr data-asset="')[1].split("</tr>")[0]
    assert "<td>507.50 EUR</td>" in row  # 5 × 100.00 + 1.5 % fee


def test_settled_is_the_one_word_on_the_order_page_and_the_portfolio(client, offering, investor, fund):
    fund(investor, 100_000)
    order = order_place(investor=investor, offering_id=offering.pk, quantity=1, idempotency_key="a")
    confirm(order, round_=77)
    client.force_login(investor)
    page = client.get(reverse("marketplace:order", args=[order.public_id])).content.decode()
    assert '<strong id="order-status" data-status="settled">Settled</strong>' in page
    assert "Confirmed on chain" not in page
    portfolio = client.get(reverse("marketplace:portfolio")).content.decode()
    orders = portfolio.split('<table id="orders">')[1].split("</table>")[0]
    assert 'badge-ok">Settled</span>' in orders and "Confirmed" not in orders


def test_cash_events_take_constant_queries_as_events_grow(offering, fund):
    investor = verified_investor()

    def grow(n):
        for _ in range(n):
            fund(investor, 10_150)
            confirm(order_place(investor=investor, offering_id=offering.pk, quantity=1, idempotency_key=f"k{grow.i}"))
            grow.i += 1

    grow.i = 0

    def queries():
        with CaptureQueriesContext(connection) as ctx:
            events = cash_events_for(user=investor)
            for event in events:  # everything the template reads
                for p in event.postings:
                    assert p.entry.order is None or p.entry.order.asset.unit_name
        return len(ctx.captured_queries), len(events)

    grow(1)
    few, n_few = queries()
    grow(5)
    many, n_many = queries()
    assert (n_few, n_many) == (2, 12) and many == few
    assert (
        cash_events_for(user=investor, limit=3)[0].kind == "purchase"
        and len(cash_events_for(user=investor, limit=3)) == 3
    )
