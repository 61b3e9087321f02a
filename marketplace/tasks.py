"""Celery tasks: thin wrappers that call one service (beat runs reconcile_holdings hourly
and trade_orders_expire every MARKETPLACE_EXPIRY_INTERVAL_SECONDS)."""

from celery import shared_task

from .reconciliation import reconcile
from .trading import trade_orders_expire as trade_orders_expire_service


@shared_task(name="marketplace.tasks.reconcile_holdings")
def reconcile_holdings() -> int:
    from .check_results import check_result_record

    report = reconcile()
    report.log()
    check_result_record("reconcile", len(report.mismatches))
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


@shared_task(name="marketplace.tasks.distributions_pay_due")
def distributions_pay_due() -> int:
    """Beat (hourly): pay every approved, funded distribution whose payment date has
    come, and finish runs that stopped half-way (marketplace/distributions.py)."""
    from .distributions import distribution_pay, distributions_due

    paid = 0
    for distribution in distributions_due():
        report = distribution_pay(distribution=distribution)
        paid += report.paid
    return paid


@shared_task(name="marketplace.tasks.distribution_mails_send")
def distribution_mails_send(payment_ids: list[int]) -> int:
    """One mail per paid holder of a distribution batch, over one mail connection."""
    from .distributions import distribution_mails

    return distribution_mails(payment_ids)


@shared_task(name="marketplace.tasks.distribution_reinvest")
def distribution_reinvest(payment_ids: list[int]) -> int:
    """Carry out the reinvestment instructions of a paid batch's holders."""
    from .distributions import reinvest_payments

    return reinvest_payments(payment_ids)
