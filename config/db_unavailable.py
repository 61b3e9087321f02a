"""When the database is briefly unavailable: the connection was lost (the server restarted,
a proxy or `pg_terminate_backend` dropped it), the server is gone, or the embedded mode's
SQLite stayed locked past its busy timeout.

Web requests (`DatabaseUnavailableMiddleware`, in every mode's MIDDLEWARE): answer 503
"The service is briefly unavailable; please try again" with Retry-After, never a 500 and
never a misleading 400. The transaction in flight rolled back; forms carry their
idempotency key, so sending the same form again is safe. The broken connection is closed
at once so the next request on this thread opens a fresh one (idle connections that died
between requests are caught before use by CONN_HEALTH_CHECKS, `database_from_env`).

Celery tasks (`DatabaseRetryTask`, the base of every task): retried promptly with
exponential backoff after closing the broken connection, a few times, instead of waiting
for the outbox sweeper or the next beat run.

SQLite's own OperationalErrors other than "locked" ("no such table", ...) are bugs, not
outages: they stay 500s and fail their task."""

from __future__ import annotations

import logging
import random
import sqlite3
import sys
from contextlib import ExitStack
from typing import Any

from celery import Task
from django.core.signals import got_request_exception
from django.db import InterfaceError, OperationalError, connections
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string

logger = logging.getLogger(__name__)
SQLITE_LOCKED = ("database is locked", "database table is locked")
RETRY_AFTER_SECONDS = 5
MESSAGE = "The service is briefly unavailable; please try again."


def is_unavailable(exc: BaseException) -> bool:
    """A database error that a retry a moment later can get past."""
    if isinstance(exc, InterfaceError):
        return True
    if not isinstance(exc, OperationalError):
        return False
    if isinstance(exc.__cause__, sqlite3.Error):
        return any(m in str(exc) for m in SQLITE_LOCKED)
    return True


def drop_broken_connections() -> list[str]:
    """Close every connection of this thread that failed and no longer answers (Django's
    end-of-request rule, applied now). Returns the aliases closed. A connection inside an
    atomic block is left alone unless it is broken: its owner rolls back."""
    closed = []
    for conn in connections.all(initialized_only=True):
        if conn.connection is not None and conn.errors_occurred and not conn.is_usable():
            conn.close()
            closed.append(conn.alias)
    return closed


def unavailable_response(request: HttpRequest) -> HttpResponse:
    """A standalone page (like 500.html: rendering it reads nothing from the database).
    For HTMX, a small notice put at the top of the page, which keeps the form (and its
    idempotency key) as it was: static/js/htmx-status.js lets the 503 swap in."""
    if request.headers.get("HX-Request") == "true":
        response = HttpResponse(render_to_string("503_fragment.html", {"message": MESSAGE}), status=503)
        response["HX-Retarget"] = "#main"
        response["HX-Reswap"] = "afterbegin"
    else:
        response = HttpResponse(render_to_string("503.html", {"message": MESSAGE}), status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


class DatabaseUnavailableMiddleware:
    """Sits outside SessionMiddleware (right after SecurityMiddleware). A view's error
    comes through process_exception (the 503 then skips the session save, as every 5xx
    does). An error in an inner middleware, the user lookup or the session save has
    already been turned into a response by Django: a 500 (config/sessions.py makes a
    failed session save one too, where Django's store would report a deleted session,
    400). So the middleware notes every such database
    error of the request (a query wrapper on each connection, and got_request_exception
    for a connection that could not even be opened) and turns those responses into this
    503 too."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        errors: list[BaseException] = []
        request._database_unavailable = errors

        def note(execute, sql, params, many, context):
            try:
                return execute(sql, params, many, context)
            except (OperationalError, InterfaceError) as exc:
                if is_unavailable(exc):
                    errors.append(exc)
                raise

        with ExitStack() as stack:
            for conn in connections.all():
                stack.enter_context(conn.execute_wrapper(note))
            response = self.get_response(request)
        if response.status_code in (400, 500) and errors:
            drop_broken_connections()
            logger.warning(
                "database unavailable (%s: %s): %s %s answered 503 instead of %s",
                type(errors[-1]).__name__,
                str(errors[-1]).strip()[:200],
                request.method,
                request.path,
                response.status_code,
            )
            response = unavailable_response(request)
        return response

    def process_exception(self, request, exception):
        if not is_unavailable(exception):
            return None
        closed = drop_broken_connections()
        logger.warning(
            "database unavailable (%s: %s): %s %s answered 503%s",
            type(exception).__name__,
            str(exception).strip()[:200],
            request.method,
            request.path,
            f"; closed connection {', '.join(closed)}" if closed else "",
        )
        return unavailable_response(request)


@receiver(got_request_exception)
def _note_uncaught(sender, request=None, **kwargs) -> None:
    """An exception Django turned into a 500 outside the view (sent while it is handled)."""
    exc = sys.exc_info()[1]
    errors = getattr(request, "_database_unavailable", None)
    if errors is not None and exc is not None and is_unavailable(exc):
        errors.append(exc)


class DatabaseRetryTask(Task):
    """Base class of every Celery task (config/celery.py): a task whose body fails with a
    lost connection is retried after `db_retry_backoff` s, doubling with jitter, up to
    `db_max_retries` times (counted apart from the task's own retries in the message's
    `_db_retries` keyword). Tasks must be safe to run again; the outbox's are (it
    claims rows with conditional updates, chain/worker.py). Eager tasks (tests) run in
    the caller's connection and transaction: they are not retried."""

    db_max_retries = 5
    # The retry message carries `_db_retries`, which no task's signature names: Celery's
    # argument check (on .delay and .retry) would refuse it.
    typing = False
    db_retry_backoff = 1.0
    db_retry_backoff_max = 30.0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        db_retries = kwargs.pop("_db_retries", 0)
        try:
            return super().__call__(*args, **kwargs)
        except (OperationalError, InterfaceError) as exc:
            if self.request.is_eager or not is_unavailable(exc) or db_retries >= self.db_max_retries:
                raise
            drop_broken_connections()
            ceiling = min(self.db_retry_backoff_max, self.db_retry_backoff * 2**db_retries)
            countdown = ceiling / 2 + random.uniform(0, ceiling / 2)
            logger.warning(
                "task %s[%s] lost the database (%s: %s); retry %d/%d in %.1fs",
                self.name,
                self.request.id,
                type(exc).__name__,
                str(exc).strip()[:200],
                db_retries + 1,
                self.db_max_retries,
                countdown,
            )
            raise self.retry(
                args=args,
                kwargs={**kwargs, "_db_retries": db_retries + 1},
                countdown=countdown,
                exc=exc,
                max_retries=self.request.retries + 1,  # the limit is db_max_retries, above
            ) from exc
