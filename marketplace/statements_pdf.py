"""The monthly statement and the annual tax summary as PDF (reportlab platypus), laid out
like a bank statement: a header per currency section (platform, investor, period,
currency), tables with right-aligned amounts and totals, "Page x of y" and a footer line on
every page. Only formats what `marketplace.statements` computed; no arithmetic on money
beyond the sums the statement objects give."""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from io import BytesIO
from typing import Any
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFError, TTFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    Flowable,
    KeepTogether,
    PageBreak,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from config.money import format_money

from .statements import PLATFORM_NAME, MonthlyStatement, Position, TaxSummary, received_at


def _fonts() -> tuple[str, str]:
    """DejaVu Sans where the system has it (names in any script), else Helvetica (Latin-1)."""
    try:
        pdfmetrics.registerFont(TTFont("StatementSans", "DejaVuSans.ttf"))
        pdfmetrics.registerFont(TTFont("StatementSans-Bold", "DejaVuSans-Bold.ttf"))
    except (TTFError, OSError):
        return "Helvetica", "Helvetica-Bold"
    return "StatementSans", "StatementSans-Bold"


FONT, BOLD = _fonts()
PAGE_WIDTH, PAGE_HEIGHT = A4
MARGIN = 15 * mm
WIDTH = PAGE_WIDTH - 2 * MARGIN
INK = colors.HexColor("#1f2933")
MUTED = colors.HexColor("#5f6b7a")
RULE = colors.HexColor("#c5ccd6")
BAND = colors.HexColor("#eef1f5")

TEXT = ParagraphStyle("text", fontName=FONT, fontSize=8, leading=10, textColor=INK)
SMALL = ParagraphStyle("small", parent=TEXT, fontSize=7, leading=8.5, textColor=MUTED)
TITLE = ParagraphStyle("title", parent=TEXT, fontName=BOLD, fontSize=16, leading=19)
BRAND = ParagraphStyle("brand", parent=TEXT, fontName=BOLD, fontSize=11, leading=14)
HEADING = ParagraphStyle("heading", parent=TEXT, fontName=BOLD, fontSize=10, leading=13, spaceBefore=8, spaceAfter=3)


def amount(minor: int | None, currency: str) -> str:
    """1234.56 with grouping, no currency code (the header and footer say it)."""
    return format_money(minor, currency).removesuffix(f" {currency}")


def _p(text: str, style: ParagraphStyle = TEXT) -> Paragraph:
    """Text from people (names, reasons) is escaped: Paragraph reads markup."""
    return Paragraph(escape(text), style)


def _day(at: datetime.datetime | datetime.date | None) -> str:
    return f"{at:%d %b %Y}" if at is not None else ""


class _Section(Flowable):
    """Marks the page with the section's currency (read by the footer)."""

    def __init__(self, currency: str):
        super().__init__()
        self.currency = currency

    def wrap(self, availWidth, availHeight):  # noqa: N803 (reportlab's names)
        return 0, 0

    def draw(self):
        self.canv.section_currency = self.currency  # type: ignore[attr-defined]


def _canvas_class(*, running_head: str, generated_at: datetime.datetime):
    """A canvas that holds its pages until the end so each can say "Page x of y"."""

    class StatementCanvas(Canvas):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.section_currency = "—"
            self._held_pages: list[dict] = []

        def showPage(self):  # noqa: N802 (reportlab's name)
            self._held_pages.append(dict(self.__dict__))
            self._startPage()

        def save(self):
            total = len(self._held_pages)
            for number, state in enumerate(self._held_pages, start=1):
                self.__dict__.update(state)
                self._decorate(number, total)
                super().showPage()
            super().save()

        def _decorate(self, number: int, total: int) -> None:
            self.saveState()
            self.setStrokeColor(RULE)
            self.setLineWidth(0.5)
            top = PAGE_HEIGHT - MARGIN + 6 * mm
            self.setFont(BOLD, 8)
            self.setFillColor(INK)
            self.drawString(MARGIN, top, PLATFORM_NAME)
            self.setFont(FONT, 8)
            self.setFillColor(MUTED)
            self.drawRightString(PAGE_WIDTH - MARGIN, top, f"{running_head} · {self.section_currency}")
            self.line(MARGIN, top - 2 * mm, PAGE_WIDTH - MARGIN, top - 2 * mm)
            bottom = MARGIN - 8 * mm
            self.line(MARGIN, bottom + 4 * mm, PAGE_WIDTH - MARGIN, bottom + 4 * mm)
            self.drawString(
                MARGIN,
                bottom,
                f"Generated {generated_at:%Y-%m-%d %H:%M:%S} UTC; amounts in {self.section_currency}; "
                "cost basis includes fees",
            )
            self.drawRightString(PAGE_WIDTH - MARGIN, bottom, f"Page {number} of {total}")
            self.restoreState()

    return StatementCanvas


def _table(
    header: Sequence[str],
    rows: Sequence[Sequence[Any]],
    widths: Sequence[float],
    *,
    money: Sequence[int] = (),
    totals: Sequence[Sequence[Any]] = (),
) -> Table:
    """Header row, body rows, total rows (bold, ruled); money columns right-aligned."""
    data = [list(header), *[list(r) for r in rows], *[list(t) for t in totals]]
    total_widths = sum(widths)
    table = Table(data, colWidths=[w * WIDTH / total_widths for w in widths], repeatRows=1)
    style = [
        ("FONT", (0, 0), (-1, -1), FONT, 8),
        ("TEXTCOLOR", (0, 0), (-1, -1), INK),
        ("FONT", (0, 0), (-1, 0), BOLD, 7.5),
        ("BACKGROUND", (0, 0), (-1, 0), BAND),
        ("LINEBELOW", (0, 0), (-1, 0), 0.5, RULE),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("TOPPADDING", (0, 0), (-1, -1), 2),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
        ("LEFTPADDING", (0, 0), (-1, -1), 3),
        ("RIGHTPADDING", (0, 0), (-1, -1), 3),
    ]
    for col in money:
        style.append(("ALIGN", (col, 0), (col, -1), "RIGHT"))
    if rows:
        style.append(("LINEBELOW", (0, 1), (-1, len(rows)), 0.25, BAND))
    if totals:
        first = len(rows) + 1
        style += [("FONT", (0, first), (-1, -1), BOLD, 8), ("LINEABOVE", (0, first), (-1, first), 0.75, INK)]
    table.setStyle(TableStyle(style))
    return table


def _block(title: str, table: Table | None, empty: str, note: str = "") -> list[Flowable]:
    flowables: list[Flowable] = [_p(title, HEADING)]
    if table is None:
        flowables.append(_p(empty, SMALL))
    else:
        flowables.append(table)
    if note:
        flowables.append(_p(note, SMALL))
    return [KeepTogether(flowables[:2]), *flowables[2:]]


def _header(*, title: str, investor, period_lines: Sequence[tuple[str, str]], currency: str) -> list[Flowable]:
    name = investor.get_full_name() if hasattr(investor, "get_full_name") else str(investor)
    details = [
        ("Account holder", name),
        ("Email", investor.email),
        *period_lines,
        ("Currency", currency),
    ]
    left = [_p(PLATFORM_NAME, BRAND), _p(title, TITLE)]
    right = Table(
        [[_p(label, SMALL), _p(value)] for label, value in details],
        colWidths=[28 * mm, 72 * mm],
        style=TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("TOPPADDING", (0, 0), (-1, -1), 1),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 1),
            ]
        ),
    )
    head = Table(
        [[left, right]],
        colWidths=[WIDTH - 100 * mm, 100 * mm],
        style=TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LINEBELOW", (0, 0), (-1, 0), 1, INK),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 6),
                ("LEFTPADDING", (0, 0), (0, 0), 0),
            ]
        ),
    )
    return [head, Spacer(1, 4 * mm)]


def _build(story: list[Flowable], *, title: str, running_head: str, generated_at: datetime.datetime) -> bytes:
    out = BytesIO()
    doc = SimpleDocTemplate(
        out,
        pagesize=A4,
        leftMargin=MARGIN,
        rightMargin=MARGIN,
        topMargin=MARGIN + 4 * mm,
        bottomMargin=MARGIN,
        title=title,
        author=PLATFORM_NAME,
        creator=PLATFORM_NAME,
    )
    doc.build(story, canvasmaker=_canvas_class(running_head=running_head, generated_at=generated_at))
    return out.getvalue()


# -- the monthly statement -------------------------------------------------------------------


def _positions_table(positions: list[Position], currency: str) -> Table | None:
    if not positions:
        return None
    rows = [
        [_p(p.asset.name), p.asset.unit_name, f"{p.units:,}", amount(p.price_minor, currency), _p(p.price_basis, SMALL),
         amount(p.value_minor, currency)]
        for p in positions
    ]  # fmt: skip
    total = sum(p.value_minor or 0 for p in positions)
    return _table(
        ["Asset", "Unit", "Units", "Price", "Price basis", "Value"],
        rows,
        [34, 10, 10, 14, 22, 16],
        money=(2, 3, 5),
        totals=[["Total value", "", "", "", "", amount(total, currency)]],
    )


def monthly_statement_pdf(statement: MonthlyStatement) -> bytes:
    period = statement.period
    investor = statement.investor
    dates = f"{_day(period.start)} – {_day(period.last_day)}"
    period_lines = [
        ("Period", period.label),
        ("Dates", f"{dates}{' (to date)' if period.to_date else ''}, UTC"),
        ("Statement date", _day(statement.generated_at)),
    ]
    story: list[Flowable] = []
    if not statement.sections:
        story += _header(title="Monthly statement", investor=investor, period_lines=period_lines, currency="—")
        story.append(_p("No cash, holdings or activity in this period.", TEXT))
    for index, s in enumerate(statement.sections):
        c = s.currency
        if index:
            story.append(PageBreak())
        story.append(_Section(c))
        story += _header(title="Monthly statement", investor=investor, period_lines=period_lines, currency=c)
        summary = [
            ["Opening cash balance", amount(s.opening_cash.total_minor, c)],
            ["Money in", amount(s.money_in_minor, c)],
            ["Money out", amount(s.money_out_minor, c)],
            ["Closing cash balance", amount(s.closing_cash.total_minor, c)],
            ["   of which available", amount(s.closing_cash.available_minor, c)],
            ["   of which held (open orders, settlements, withdrawals)", amount(s.closing_cash.held_minor, c)],
            ["Value of positions at opening", amount(s.opening_value_minor, c)],
            ["Value of positions at closing", amount(s.closing_value_minor, c)],
            ["Fees paid", amount(s.fees_minor, c)],
            ["Distributions received, net", amount(s.distribution_total("net_minor"), c)],
        ]
        story += _block("Summary", _table(["", c], summary, [70, 30], money=(1,)), "")

        cash_rows: list[list[Any]] = [
            [_day(period.start), _p("Opening balance"), "", "", amount(s.opening_cash.total_minor, c)]
        ]
        for line in s.cash_lines:
            text = [_p(line.description)]
            if line.detail:
                text.append(_p(line.detail, SMALL))
            cash_rows.append(
                [
                    _day(line.at),
                    text,
                    amount(line.available_minor, c),
                    amount(line.held_minor, c),
                    amount(line.balance_minor, c),
                ]
            )
        story += _block(
            "Cash movements",
            _table(
                ["Date", "Description", "Available", "Held", "Balance"],
                cash_rows,
                [13, 47, 14, 13, 14],
                money=(2, 3, 4),
                totals=[
                    [
                        _day(period.last_day),
                        "Closing balance",
                        amount(s.closing_cash.available_minor, c),
                        amount(s.closing_cash.held_minor, c),
                        amount(s.closing_cash.total_minor, c),
                    ]
                ],
            ),
            "",
            note="Available and Held are each movement's change in your cash available and in your cash held; "
            "Balance is available plus held after it (the closing row shows the balances).",
        )

        note = (
            "Valued at the last trade price at the date; without a trade, the latest published valuation per "
            "fraction; without one, the offering price. Positions come from the history of purchases and trades "
            "(a purchase counts from its order, a trade from its match), settled on chain or not."
        )
        story += _block(
            f"Positions at opening ({_day(period.start)})",
            _positions_table(s.opening_positions, c),
            "No positions.",
        )
        story += _block(
            f"Positions at closing ({_day(period.last_day)})",
            _positions_table(s.closing_positions, c),
            "No positions.",
            note=note,
        )

        purchases = [
            [_day(pl.order.created_at), _p(pl.order.asset.name), f"{pl.order.quantity:,}",
             amount(pl.order.price_per_fraction_minor, c), amount(pl.order.gross_minor, c),
             amount(pl.order.fee_minor, c), amount(pl.order.total_minor, c), pl.status]
            for pl in s.purchases
        ]  # fmt: skip
        kept = [pl for pl in s.purchases if not pl.refunded]
        story += _block(
            "Purchases (primary market)",
            _table(
                ["Date", "Asset", "Units", "Price", "Gross", "Fee", "Total", "Status"],
                purchases,
                [13, 30, 9, 12, 13, 10, 14, 12],
                money=(2, 3, 4, 5, 6),
                totals=[
                    [
                        "Total",
                        "(refunded left out)",
                        "",
                        "",
                        amount(sum(pl.order.gross_minor for pl in kept), c),
                        amount(s.purchase_fees_minor, c),
                        amount(sum(pl.order.total_minor for pl in kept), c),
                        "",
                    ]
                ],
            )
            if purchases
            else None,
            "No purchases in this period.",
        )

        trades = [
            [_day(tl.trade.created_at), _p(tl.trade.asset.name), tl.side.capitalize(), f"{tl.trade.quantity:,}",
             amount(tl.trade.price_minor, c), amount(tl.trade.gross_minor, c), amount(tl.fee_minor, c),
             amount(tl.cash_minor, c), tl.status]
            for tl in s.trades
        ]  # fmt: skip
        live = [tl for tl in s.trades if not tl.reversed]
        story += _block(
            "Secondary market: purchases and sales",
            _table(
                ["Date", "Asset", "Side", "Units", "Price", "Gross", "Your fee", "Cash", "Status"],
                trades,
                [13, 26, 8, 8, 11, 13, 10, 13, 11],
                money=(3, 4, 5, 6, 7),
                totals=[
                    [
                        "Total",
                        "(reversed left out)",
                        "",
                        "",
                        "",
                        "",
                        amount(s.trading_fees_minor, c),
                        amount(sum(tl.cash_minor for tl in live), c),
                        "",
                    ]
                ],
            )
            if trades
            else None,
            "No trades in this period.",
            note="Cash: what a purchase cost you (gross plus your fee) or what a sale paid you (gross less your fee).",
        )

        story += _block(
            "Fees",
            _table(
                ["", c],
                [
                    ["Primary purchases (platform fee)", amount(s.purchase_fees_minor, c)],
                    ["Secondary market (your maker or taker fee)", amount(s.trading_fees_minor, c)],
                ],
                [70, 30],
                money=(1,),
                totals=[["Total fees", amount(s.fees_minor, c)]],
            ),
            "",
        )

        distributions = [
            [_day(received_at(p)), _p(p.distribution.asset.name), p.distribution.get_kind_display(), f"{p.units:,}",
             amount(p.gross_minor, c), amount(p.withheld_minor, c), amount(p.net_minor, c)]
            for p in s.distributions
        ]  # fmt: skip
        story += _block(
            "Distributions received",
            _table(
                ["Date", "Asset", "Kind", "Units", "Gross", "Withheld", "Net"],
                distributions,
                [13, 32, 15, 10, 14, 12, 14],
                money=(3, 4, 5, 6),
                totals=[
                    [
                        "Total",
                        "",
                        "",
                        "",
                        amount(s.distribution_total("gross_minor"), c),
                        amount(s.distribution_total("withheld_minor"), c),
                        amount(s.distribution_total("net_minor"), c),
                    ]
                ],
            )
            if distributions
            else None,
            "No distributions received in this period.",
        )

        held = [
            [_day(p.paid_at), _p(p.distribution.asset.name), p.distribution.get_kind_display(),
             amount(p.gross_minor, c), _p(p.hold_reason or "Held by compliance.", SMALL)]
            for p in s.held_payouts
        ]  # fmt: skip
        story += _block(
            "Distribution payouts held",
            _table(["Held on", "Asset", "Kind", "Gross", "Reason"], held, [13, 28, 14, 14, 40], money=(3,))
            if held
            else None,
            "None held at the end of the period.",
            note="A held payout waits in suspense until compliance releases it to you (withholding applies then) "
            "or returns it to the issuer."
            if held
            else "",
        )
    running_head = f"Monthly statement {period.start:%B %Y} · {investor.email}"
    return _build(
        story, title=f"Statement {period.start:%Y-%m}", running_head=running_head, generated_at=statement.generated_at
    )


# -- the annual tax summary ------------------------------------------------------------------

FIFO_NOTE = (
    "Realised gains and losses of secondary-market sales, first in, first out per asset. Cost basis includes fees: "
    "a primary purchase costs its gross plus the platform fee, a trade bought its gross plus your fee; proceeds are "
    "the gross less your fee. A lot sold in parts: its first n units of U costing C in all cost floor(C × n ÷ U), "
    "so each part costs within 0.01 of its exact share and the whole lot's cost is counted once all of it is sold. "
    "Reversed trades and refunded purchases are left out. Returns of capital are listed, not deducted from the cost "
    "basis."
)


def _income_table(lines, currency: str, total) -> Table | None:
    if not lines:
        return None
    rows = [
        [_p(line.asset.name), line.kind_label, f"{line.payments:,}", amount(line.gross_minor, currency),
         amount(line.withheld_minor, currency), amount(line.net_minor, currency)]
        for line in lines
    ]  # fmt: skip
    return _table(
        ["Asset", "Kind", "Payments", "Gross", "Withheld", "Net"],
        rows,
        [38, 18, 10, 15, 14, 15],
        money=(2, 3, 4, 5),
        totals=[
            [
                "Total",
                "",
                "",
                amount(total("gross_minor"), currency),
                amount(total("withheld_minor"), currency),
                amount(total("net_minor"), currency),
            ]
        ],
    )


def tax_summary_pdf(summary: TaxSummary) -> bytes:
    period = summary.period
    investor = summary.investor
    period_lines = [
        ("Tax year", period.label),
        ("Dates", f"{_day(period.start)} – {_day(period.last_day)}{' (to date)' if period.to_date else ''}, UTC"),
        ("Issued", _day(summary.generated_at)),
    ]
    story: list[Flowable] = []
    if not summary.sections:
        story += _header(title="Annual tax summary", investor=investor, period_lines=period_lines, currency="—")
        story.append(_p("No income and no sales in this year.", TEXT))
    for index, s in enumerate(summary.sections):
        c = s.currency
        if index:
            story.append(PageBreak())
        story.append(_Section(c))
        story += _header(title="Annual tax summary", investor=investor, period_lines=period_lines, currency=c)
        story += _block(
            "Summary",
            _table(
                ["", c],
                [
                    ["Income received, gross", amount(s.income_total("gross_minor"), c)],
                    ["Capital returned, gross", amount(s.capital_total("gross_minor"), c)],
                    ["Tax withheld", amount(s.withheld_minor, c)],
                    ["Sale proceeds (net of fees)", amount(s.proceeds_minor, c)],
                    ["Cost basis of units sold (incl. fees)", amount(s.cost_minor, c)],
                    ["Gains", amount(s.gains_minor, c)],
                    ["Losses", amount(s.losses_minor, c)],
                    ["Net realised gain/loss", amount(s.gain_minor, c)],
                ],
                [70, 30],
                money=(1,),
            ),
            "",
        )
        story += _block(
            "Income by asset and kind (rent, interest, dividends)",
            _income_table(s.income, c, s.income_total),
            "No income received in this year.",
        )
        story += _block(
            "Capital returned (return of capital, final redemption)",
            _income_table(s.capital, c, s.capital_total),
            "No capital returned in this year.",
        )
        story += _block(
            "Tax withheld",
            _table(
                ["", c],
                [
                    ["On income", amount(s.income_total("withheld_minor"), c)],
                    ["On capital returned", amount(s.capital_total("withheld_minor"), c)],
                ],
                [70, 30],
                money=(1,),
                totals=[["Total withheld", amount(s.withheld_minor, c)]],
            ),
            "",
        )
        realised_rows = []
        for r in s.realised:
            name: list[Paragraph] = [_p(r.asset.name)]
            if r.realised.uncovered_units:
                name.append(_p(f"{r.realised.uncovered_units:,} units without a recorded acquisition: cost 0", SMALL))
            realised_rows.append(
                [
                    _day(r.at),
                    name,
                    f"{r.realised.units:,}",
                    amount(r.realised.proceeds_minor, c),
                    amount(r.realised.cost_minor, c),
                    amount(r.realised.gain_minor, c),
                ]
            )
        story += _block(
            "Realised gains and losses (first in, first out)",
            _table(
                ["Sold on", "Asset", "Units", "Proceeds", "Cost basis", "Gain/loss"],
                realised_rows,
                [14, 38, 10, 15, 15, 15],
                money=(2, 3, 4, 5),
                totals=[
                    [
                        "Total",
                        "",
                        f"{sum(r.realised.units for r in s.realised):,}",
                        amount(s.proceeds_minor, c),
                        amount(s.cost_minor, c),
                        amount(s.gain_minor, c),
                    ]
                ],
            )
            if realised_rows
            else None,
            "No sales in this year.",
            note=FIFO_NOTE,
        )
        story.append(Spacer(1, 4 * mm))
        story.append(_p("This summary is information from our books, not tax advice.", SMALL))
    running_head = f"Annual tax summary {summary.year} · {investor.email}"
    return _build(
        story, title=f"Tax summary {summary.year}", running_head=running_head, generated_at=summary.generated_at
    )
