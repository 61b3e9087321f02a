"""The last result of each proof (ledger_check, reconcile, market_check,
distribution_check), kept in the shared cache for /metrics and alerts: when it ran and how
many problems it found. Written by the commands and by the hourly reconcile task; read by
config.metrics through settings.METRICS_SOURCES["last_checks"]. A cache outage loses only
this record, never the check."""

import logging
import time

from django.core.cache import cache

logger = logging.getLogger("marketplace.check_results")

CHECKS = ("ledger_check", "reconcile", "market_check", "distribution_check")
KEY = "rwa:last-check:{}"
KEEP_SECONDS = 30 * 24 * 3600


def check_result_record(name: str, problems: int) -> None:
    if name not in CHECKS:
        raise ValueError(f"unknown check {name!r}")
    try:
        cache.set(KEY.format(name), {"at": time.time(), "problems": int(problems)}, KEEP_SECONDS)
    except Exception:  # noqa: BLE001 - the record is for monitoring only
        logger.warning("could not record the result of %s", name, exc_info=True)


def last_check_results() -> dict[str, dict]:
    """{check: {"at": unix time, "problems": n}} for the checks that have run."""
    try:
        found = cache.get_many([KEY.format(name) for name in CHECKS])
    except Exception:  # noqa: BLE001
        logger.warning("could not read the last check results", exc_info=True)
        return {}
    return {name: found[KEY.format(name)] for name in CHECKS if KEY.format(name) in found}
