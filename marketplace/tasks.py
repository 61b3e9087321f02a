"""Celery tasks: thin wrappers that call one service (beat runs reconcile_holdings hourly)."""

from celery import shared_task

from .reconciliation import reconcile


@shared_task(name="marketplace.tasks.reconcile_holdings")
def reconcile_holdings() -> int:
    report = reconcile()
    report.log()
    return len(report.mismatches)
