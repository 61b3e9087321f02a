"""Celery tasks: thin wrappers that call one service (beat runs reconcile_holdings hourly
and trade_orders_expire every MARKETPLACE_EXPIRY_INTERVAL_SECONDS)."""

from celery import shared_task

from .reconciliation import reconcile
from .trading import trade_orders_expire as trade_orders_expire_service


@shared_task(name="marketplace.tasks.reconcile_holdings")
def reconcile_holdings() -> int:
    report = reconcile()
    report.log()
    return len(report.mismatches)


@shared_task(name="marketplace.tasks.trade_orders_expire")
def trade_orders_expire() -> int:
    """Beat: expire good-till-date trade orders whose time has come."""
    return trade_orders_expire_service()


@shared_task(name="marketplace.tasks.auctions_run")
def auctions_run() -> int:
    """Beat (every MARKETPLACE_AUCTION_INTERVAL_SECONDS): run the due call auctions, one
    transaction per book, and call session-open auctions (marketplace/auction.py)."""
    from .auction import auctions_run as auctions_run_service

    return auctions_run_service()
