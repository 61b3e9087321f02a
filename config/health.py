"""Liveness and readiness. /healthz says the process answers; /readyz checks each
dependency and answers 503 when any one is down, with the per-dependency status.

The probes are public (load balancers call them without credentials), so they say which
dependency failed and the exception's type, never its message (host names, users, ports):
that goes to the log, and to signed-in staff."""

import logging
import time
from collections.abc import Callable

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.utils.module_loading import import_string
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

logger = logging.getLogger("config.health")


def check_database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return connection.vendor


BROKER_CONNECT_TIMEOUT_SECONDS = 2


def check_broker() -> str:
    from config.celery import app

    # The URL comes from settings at call time (the Celery app copies it once at start),
    # and there is no retry: a probe must answer within its own timeout, not kombu's
    # back-off schedule.
    with app.connection_for_write(
        url=settings.CELERY_BROKER_URL, connect_timeout=BROKER_CONNECT_TIMEOUT_SECONDS
    ) as conn:
        conn.ensure_connection(max_retries=0, timeout=BROKER_CONNECT_TIMEOUT_SECONDS)
        return conn.as_uri()


def readiness_checks() -> dict[str, Callable[[], str | None]]:
    """READINESS_CHECKS: name -> dotted path of a function that returns a short detail,
    None when the dependency is not configured here, or raises. Apps above config hand
    theirs in this way (chain's algod check) instead of config importing them."""
    return {name: import_string(path) for name, path in settings.READINESS_CHECKS.items()}


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    staff = request.user.is_authenticated and request.user.is_staff
    results: dict[str, dict[str, str | float]] = {}
    healthy = True
    for name, check in readiness_checks().items():
        started = time.monotonic()
        try:
            detail = check()
            if detail is None:
                continue
            results[name] = {"status": "ok", "detail": str(detail) if staff else "reachable"}
        except Exception as exc:  # a readiness probe reports every failure, whatever its type
            healthy = False
            logger.warning("readiness check %s failed: %s: %s", name, type(exc).__name__, exc)
            full = f"{type(exc).__name__}: {exc}"[:300]
            results[name] = {
                "status": "error",
                "detail": full if staff else f"{type(exc).__name__} (see the server log)",
            }
        results[name]["ms"] = round((time.monotonic() - started) * 1000, 1)
    return JsonResponse({"status": "ok" if healthy else "error", "checks": results}, status=200 if healthy else 503)
