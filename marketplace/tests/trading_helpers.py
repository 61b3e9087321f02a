"""Helpers of the secondary-market tests: place orders, give sellers settled units, read
balances and holdings, and settle a trade's outbox row without a chain."""

import uuid

from django.core.exceptions import ValidationError

from chain.models import ChainTransaction
from marketplace.ledger_proofs import ledger_verify
from marketplace.market_proofs import market_verify
from marketplace.models import Holding, LedgerAccount, Trade
from marketplace.trading import (
    trade_order_place,
    trade_settlement_confirmed,
    trade_settlement_failed,
)

A = LedgerAccount.Kind


def place(investor, asset, side, quantity, price, tif="gtc", key=None, expires_at=None):
    return trade_order_place(
        investor=investor,
        asset=asset,
        side=side,
        quantity=quantity,
        limit_price_minor=price,
        time_in_force=tif,
        expires_at=expires_at,
        idempotency_key=key or uuid.uuid4().hex,
    )


def give_units(investor, asset, quantity):
    """Settled units, as if delivered earlier (no chain in these tests)."""
    holding, _ = Holding.objects.get_or_create(investor=investor, asset=asset)
    Holding.objects.filter(pk=holding.pk).update(quantity=quantity)
    return holding


def cash(user, currency="EUR"):
    """(available, held) of the user's cash."""
    rows = {a.kind: a.balance for a in LedgerAccount.objects.filter(user=user, currency=currency)}
    return rows.get(A.INVESTOR_AVAILABLE, 0), rows.get(A.INVESTOR_HELD, 0)


def fees(currency="EUR"):
    account = LedgerAccount.objects.filter(kind=A.PLATFORM_FEES, currency=currency).first()
    return account.balance if account else 0


def units(user, asset):
    """(settled, pending in, locked, settling out, available to sell)."""
    h = Holding.objects.filter(investor=user, asset=asset).first()
    if h is None:
        return (0, 0, 0, 0, 0)
    return (h.quantity, h.pending_quantity, h.locked_quantity, h.pending_out_quantity, h.available_to_sell)


def codes(exc: ValidationError) -> list[str]:
    return [str(e.code) for e in exc.error_list]


def books_sound():
    market, ledger = market_verify(), ledger_verify()
    assert market.ok, market.problems
    assert ledger.ok, ledger.problems


def confirm(trade: Trade, round_=42, txid="T" * 52):
    tx = trade.chain_tx
    assert tx is not None
    ChainTransaction.objects.filter(pk=tx.pk).update(status="confirmed", confirmed_round=round_, txid=txid)
    tx.refresh_from_db()
    trade_settlement_confirmed(tx)


def fail(trade: Trade, error="algod rejected: asset frozen"):
    tx = trade.chain_tx
    assert tx is not None
    ChainTransaction.objects.filter(pk=tx.pk).update(status="failed", last_error=error)
    tx.refresh_from_db()
    trade_settlement_failed(tx)
