"""Reads that the secondary market's pages need beyond the engine's selectors
(`trading_selectors`): an investor's open orders and trades on one book, the trades of
one order, and the cash an investor's open buy orders hold. Each a constant number of
queries, whatever the number of orders or trades."""

from __future__ import annotations

from django.db.models import Q, QuerySet, Sum

from .models import Holding, Market, Trade, TradeOrder
from .trading_selectors import trade_orders_for, trades_for

OS = TradeOrder.Status


def open_trade_orders_on(*, user, market: Market | None) -> QuerySet[TradeOrder]:
    """The user's open orders on this book, newest first (none before the market opens)."""
    if market is None:
        return TradeOrder.objects.none()
    return trade_orders_for(user=user, market=market).filter(status=OS.OPEN)


def trades_on(*, user, market: Market | None) -> QuerySet[Trade]:
    """Trades the user bought or sold on this book, newest first."""
    if market is None:
        return Trade.objects.none()
    return trades_for(user=user).filter(market=market)


def trades_of_order(*, order: TradeOrder) -> QuerySet[Trade]:
    """The fills of one order, oldest first, with their settlement rows."""
    return (
        Trade.objects.filter(Q(buy_order=order) | Q(sell_order=order))
        .select_related("chain_tx")
        .order_by("created_at", "pk")
    )


def open_buy_reservations(*, user) -> dict[str, int]:
    """{currency: cash held by the user's open buy orders} (one query). The rest of held
    cash pays for trades and purchases settling and withdrawals waiting to be paid."""
    rows = (
        TradeOrder.objects.filter(investor=user, side=TradeOrder.Side.BUY, status=OS.OPEN)
        .values("currency")
        .annotate(held=Sum("reserved_minor"))
        .values_list("currency", "held")
    )
    return {currency: held or 0 for currency, held in rows}


def available_to_sell(*, user, asset) -> int:
    """What a new sell order of the user may lock now (Holding.available_to_sell)."""
    holding = Holding.objects.filter(investor=user, asset=asset).first()
    return holding.available_to_sell if holding else 0
