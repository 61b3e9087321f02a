"""What each webhook event says, for the marketplace's changes; the services call these
inside the transaction of the change (webhooks.events.event_record). Payloads carry the
user's own figures and public ids only, never another user's identity or amounts."""

from webhooks.events import event_record, event_record_many
from webhooks.models import EventKind

from .models import Deposit, PrimaryOrder, Trade, TradeOrder, Withdrawal


def trade_order_event(order: TradeOrder, kind: str) -> None:
    event_record(
        user_id=order.investor_id,
        kind=kind,
        data={
            "object": "trade_order",
            "order": str(order.public_id),
            "asset": str(order.asset.public_id),
            "side": order.side,
            "status": order.status,
            "quantity": order.quantity,
            "filled_quantity": order.filled_quantity,
            "remaining_quantity": order.remaining_quantity,
            "limit_price_minor": order.limit_price_minor,
            "currency": order.currency,
            "time_in_force": order.time_in_force,
            "cancel_code": order.cancel_code or "",
        },
    )


def primary_order_event(order: PrimaryOrder, kind: str) -> None:
    event_record(
        user_id=order.investor_id,
        kind=kind,
        data={
            "object": "primary_order",
            "order": str(order.public_id),
            "asset": str(order.asset.public_id),
            "status": order.status,
            "quantity": order.quantity,
            "total_minor": order.total_minor,
            "currency": order.currency,
        },
    )


def trade_settled(trade: Trade) -> None:
    """One event for the buyer and one for the seller, each with its own side and cash."""

    def data(side: str, cash_minor: int) -> dict:
        return {
            "object": "trade",
            "trade": str(trade.public_id),
            "asset": str(trade.asset.public_id),
            "side": side,
            "quantity": trade.quantity,
            "price_minor": trade.price_minor,
            "cash_minor": cash_minor,
            "currency": trade.currency,
        }

    event_record_many(
        kind=EventKind.TRADE_SETTLED,
        items=[
            (trade.buyer_id, data("buy", -(trade.gross_minor + trade.buyer_fee_minor))),
            (trade.seller_id, data("sell", trade.seller_net_minor)),
        ],
    )


def deposit_booked(deposit: Deposit) -> None:
    event_record(
        user_id=deposit.investor_id,
        kind=EventKind.DEPOSIT_BOOKED,
        data={
            "object": "deposit",
            "bank_reference": deposit.bank_reference,
            "amount_minor": deposit.amount_minor,
            "currency": deposit.currency,
        },
    )


def withdrawal_paid(withdrawal: Withdrawal) -> None:
    event_record(
        user_id=withdrawal.investor_id,
        kind=EventKind.WITHDRAWAL_PAID,
        data={
            "object": "withdrawal",
            "withdrawal": str(withdrawal.public_id),
            "amount_minor": withdrawal.amount_minor,
            "currency": withdrawal.currency,
            "bank_reference": withdrawal.bank_reference,
        },
    )


def distribution_paid(*, distribution, paid: list[tuple[int, int, int, int]]) -> None:
    """One event per paid holder of a batch, in a constant number of statements.
    `paid`: (investor id, gross, withheld, net) as the batch booked them."""
    if not paid:
        return
    asset_id = str(distribution.asset.public_id)
    event_record_many(
        kind=EventKind.DISTRIBUTION_PAID,
        items=[
            (
                investor_id,
                {
                    "object": "distribution_payment",
                    "distribution": str(distribution.public_id),
                    "asset": asset_id,
                    "gross_minor": gross,
                    "withheld_minor": withheld,
                    "net_minor": net,
                    "currency": distribution.currency,
                },
            )
            for investor_id, gross, withheld, net in paid
        ],
    )
