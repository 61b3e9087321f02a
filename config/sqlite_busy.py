"""The embedded mode's (SQLite) last resort under write contention: a request whose
transaction could not get SQLite's write lock within the busy timeout answers 503 "busy,
please try again" with Retry-After, never a 500. Nothing was written: the transaction
rolled back. With BEGIN IMMEDIATE and a 20 s timeout (config/settings/base.py
database_from_env) bench/embedded_concurrency measured no such refusal; this covers a
writer holding the lock longer than that. Enabled in config/settings/local.py only."""

import logging

from django.db import OperationalError
from django.http import HttpResponse
from django.template.loader import render_to_string

logger = logging.getLogger(__name__)
LOCKED = ("database is locked", "database table is locked")
RETRY_AFTER_SECONDS = 5


class SQLiteBusyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not (isinstance(exception, OperationalError) and any(m in str(exception) for m in LOCKED)):
            return None
        logger.warning("SQLite busy: %s %s answered 503", request.method, request.path)
        # A standalone page (like 500.html): rendering it reads nothing from the database.
        response = HttpResponse(render_to_string("503.html"), status=503)
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
