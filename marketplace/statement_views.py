"""Statements and tax summaries (docs/statements.md): the investor's own, and any
investor's for staff who may read the ledger in the back office. Anybody else gets a 404,
as does a year or month outside the statements' range."""

from __future__ import annotations

import datetime
import io
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET

from accounts.mfa import session_passed_second_factor, user_has_second_factor
from compliance.audit import audit_record
from config.ratelimit import client_key, hit

from .statements import PeriodError, monthly_statement, months_available, tax_summary, write_monthly_csv, write_tax_csv
from .statements_pdf import monthly_statement_pdf, tax_summary_pdf

# The back office's permission to read the ledger; it lets staff download any investor's statements.
STAFF_PERMISSION = "marketplace.view_journalentry"
PDF_RATE = (20, 60)  # PDFs generated per user per minute
CONTENT_TYPES = {"pdf": "application/pdf", "csv": "text/csv; charset=utf-8"}


def _staff_may_read(request: HttpRequest) -> bool:
    user = request.user
    if not (user.is_authenticated and user.is_active and user.is_staff and user.has_perm(STAFF_PERMISSION)):
        return False
    # The back office's second-factor rule (accounts.mfa), for this page outside it.
    return not settings.STAFF_MFA_REQUIRED or (user_has_second_factor(user) and session_passed_second_factor(request))


def _investor_for_staff(request: HttpRequest, user_id: int):
    if not _staff_may_read(request):
        raise Http404
    return get_object_or_404(get_user_model(), pk=user_id)


def _download(
    request: HttpRequest,
    *,
    investor,
    fmt: str,
    filename: str,
    build: Callable[[], Any],
    to_pdf: Callable[[Any], bytes],
    to_csv: Callable[[Any, io.StringIO], None],
) -> HttpResponse:
    if fmt == "pdf":
        limit, window = PDF_RATE
        if not hit(action="statement_pdf", who=client_key(request), limit=limit, window=window):
            response = render(request, "429.html", status=429)
            response["Retry-After"] = str(window)
            return response
    try:
        document = build()
    except PeriodError as exc:
        raise Http404(str(exc)) from None
    if fmt == "pdf":
        body: bytes | str = to_pdf(document)
    else:
        out = io.StringIO()
        to_csv(document, out)
        body = out.getvalue()
    if investor.pk != request.user.pk:
        audit_record(actor=request.user, action="statement.downloaded", target=investor, reason=f"{filename}.{fmt}")
    response = HttpResponse(body, content_type=CONTENT_TYPES[fmt])
    # The name is built from integers only: nothing of the request reaches the header.
    response["Content-Disposition"] = f'attachment; filename="rwa-{filename}.{fmt}"'
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"
    return response


def _month(request: HttpRequest, investor, year: int, month: int, fmt: str) -> HttpResponse:
    return _download(
        request,
        investor=investor,
        fmt=fmt,
        filename=f"statement-{year:04d}-{month:02d}",
        build=lambda: monthly_statement(user=investor, year=year, month=month),
        to_pdf=monthly_statement_pdf,
        to_csv=write_monthly_csv,
    )


def _tax(request: HttpRequest, investor, year: int, fmt: str) -> HttpResponse:
    return _download(
        request,
        investor=investor,
        fmt=fmt,
        filename=f"tax-summary-{year:04d}",
        build=lambda: tax_summary(user=investor, year=year),
        to_pdf=tax_summary_pdf,
        to_csv=write_tax_csv,
    )


def _index(request: HttpRequest, investor, *, staff: bool) -> HttpResponse:
    now = timezone.now()
    months = months_available(user=investor, now=now)

    def url(name: str, *args) -> str:
        if staff:
            return reverse(f"marketplace:investor_{name}", args=[investor.pk, *args])
        return reverse(f"marketplace:{name}", args=list(args))

    rows = [
        {
            "year": y,
            "month": m,
            "label": datetime.date(y, m, 1).strftime("%B %Y"),
            "current": (y, m) == (now.year, now.month),
            "pdf": url("statement_month_pdf", y, m),
            "csv": url("statement_month_csv", y, m),
        }
        for y, m in months
    ]
    years = [
        {"year": y, "current": y == now.year, "pdf": url("tax_year_pdf", y), "csv": url("tax_year_csv", y)}
        for y in sorted({y for y, _ in months}, reverse=True)
    ]
    return render(
        request,
        "marketplace/statements.html",
        {"investor": investor, "staff_view": staff, "months": rows, "years": years},
    )


@login_required
@require_GET
def statements(request: HttpRequest) -> HttpResponse:
    return _index(request, request.user, staff=False)


@login_required
@require_GET
def statement_month(request: HttpRequest, year: int, month: int, fmt: str) -> HttpResponse:
    return _month(request, request.user, year, month, fmt)


@login_required
@require_GET
def tax_year(request: HttpRequest, year: int, fmt: str) -> HttpResponse:
    return _tax(request, request.user, year, fmt)


@login_required
@require_GET
def investor_statements(request: HttpRequest, user_id: int) -> HttpResponse:
    return _index(request, _investor_for_staff(request, user_id), staff=True)


@login_required
@require_GET
def investor_statement_month(request: HttpRequest, user_id: int, year: int, month: int, fmt: str) -> HttpResponse:
    return _month(request, _investor_for_staff(request, user_id), year, month, fmt)


@login_required
@require_GET
def investor_tax_year(request: HttpRequest, user_id: int, year: int, fmt: str) -> HttpResponse:
    return _tax(request, _investor_for_staff(request, user_id), year, fmt)
