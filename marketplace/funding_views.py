"""Investor pages of funding (docs/funding.md): how to add funds, i.e. the platform's
bank account per currency and the investor's own payment reference. The rules live in
funding.py."""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from . import funding


@login_required
@require_GET
def add_funds(request: HttpRequest) -> HttpResponse:
    """The investor's deposit instructions: per currency the account to pay into, and
    the one reference that must be on every transfer (created on the first visit)."""
    reference = funding.payment_reference_for(request.user)
    accounts = funding.platform_bank_accounts()
    context = {
        "reference": reference.reference,
        "reference_printed": funding.rf_format(reference.reference),
        "accounts": accounts,
        "any_demo": any(a.demo for a in accounts),
    }
    return render(request, "marketplace/funding/add_funds.html", context)
