"""A request id on every log line, from the click to the settlement's confirmation.

`RequestIdMiddleware` takes the caller's `X-Request-ID` when it is safe (1-64 characters
of A-Z a-z 0-9 . _ -; a proxy or load balancer usually sets one) and otherwise makes a
new one (uuid4 hex). It keeps it in a ContextVar for the request's duration, puts it on
`request.request_id` and answers it in the `X-Request-ID` response header.
`RequestIdFilter` (on the log handler, production's LOGGING) copies it onto every log
record as `request_id` ("-" outside a request or task). Celery tasks enqueued during a
request carry it in their message headers and set it while they run in the worker
(config/celery_request_id.py), so the worker's log lines of an order's settlement have
the id of the request that placed it.

Imported by the settings' LOGGING (the filter): no Django imports at module level."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable
from contextvars import ContextVar
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from django.http import HttpRequest, HttpResponseBase

HEADER = "X-Request-ID"
META_KEY = "HTTP_X_REQUEST_ID"
MAX_LENGTH = 64
_SAFE = re.compile(rf"[A-Za-z0-9._-]{{1,{MAX_LENGTH}}}")

REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)


def new_request_id() -> str:
    return uuid.uuid4().hex


def is_safe(value: object) -> bool:
    """A value we may log and echo as is: 1-64 characters of [A-Za-z0-9._-]."""
    return isinstance(value, str) and _SAFE.fullmatch(value) is not None


def request_id_from(value: object) -> str:
    """The incoming id when it is safe, else a new one (never an error: a hostile header
    only costs its sender their own id)."""
    return value if isinstance(value, str) and is_safe(value) else new_request_id()


def current_request_id() -> str | None:
    return REQUEST_ID.get()


class RequestIdMiddleware:
    """Place it right after SecurityMiddleware, before anything that may log."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        request_id = request_id_from(request.META.get(META_KEY))
        request.request_id = request_id  # type: ignore[attr-defined]  # for views and templates
        token = REQUEST_ID.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            REQUEST_ID.reset(token)
        response[HEADER] = request_id
        return response


class RequestIdFilter(logging.Filter):
    """Adds `request_id` to every record it sees; never drops one. Put it on the handler
    (a logger's filter would miss records propagated from child loggers)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = REQUEST_ID.get() or "-"
        return True
