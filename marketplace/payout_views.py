"""Investor pages of payouts (docs/funding.md, "Payouts"): the payout accounts a
withdrawal can go to. The rules live in payouts.py."""

import uuid

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from config.backoffice import form_errors_from

from . import payouts
from .models import PayoutAccount


class PayoutAccountForm(forms.Form):
    """What the investor types; payouts.payout_account_add validates and normalises it
    (the lengths here only stop absurd input early)."""

    holder_name = forms.CharField(
        label="Account holder",
        max_length=70,
        help_text="As the bank knows it. It should be your verified legal name; if it differs, our team reviews "
        "the account first.",
        widget=forms.TextInput(attrs={"autocomplete": "name"}),
    )
    iban = forms.CharField(
        label="IBAN",
        max_length=64,
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false", "autocapitalize": "characters"}),
    )
    bic = forms.CharField(
        label="BIC (optional)",
        max_length=24,
        required=False,
        help_text="Leave it empty and we look it up from the IBAN where we can.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "autocapitalize": "characters"}),
    )
    label = forms.CharField(
        label="Label (optional)", max_length=60, required=False, help_text="E.g. “Main account”: only you see it."
    )


def _page(request: HttpRequest, form: PayoutAccountForm, status: int = 200) -> HttpResponse:
    now = timezone.now()
    rows = [
        {
            "account": a,
            "cooling_off": a.usable_from > now,
            "usable_now": a.status == PayoutAccount.Status.ACTIVE and a.usable_from <= now,
        }
        for a in payouts.payout_accounts_for(user=request.user)
    ]
    context = {
        "rows": rows,
        "form": form,
        "cooling_off_hours": settings.PAYOUT_ACCOUNT_COOLING_OFF_HOURS,
        "legal_name": payouts.verified_legal_name(request.user),
    }
    return render(request, "marketplace/payouts/accounts.html", context, status=status)


@login_required
@require_GET
def payout_accounts(request: HttpRequest) -> HttpResponse:
    return _page(request, PayoutAccountForm())


@login_required
@require_POST
def payout_account_add(request: HttpRequest) -> HttpResponse:
    form = PayoutAccountForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            account = payouts.payout_account_add(
                investor=request.user,
                holder_name=data["holder_name"],
                iban=data["iban"],
                bic=data["bic"],
                label=data["label"],
            )
        except ValidationError as exc:
            form_errors_from(form, exc)
        else:
            when = f"{timezone.localtime(account.usable_from):%d %b %Y %H:%M}"
            if account.status == account.Status.REVIEW:
                messages.warning(
                    request,
                    "Account saved. The holder's name differs from your verified name, so our team reviews it; "
                    f"it can be used once cleared, and not before {when}. We sent you a mail.",
                )
            else:
                messages.success(
                    request, f"Account saved. For your security it can be used from {when}. We sent you a mail."
                )
            return redirect("marketplace:payout_accounts")
    return _page(request, form, status=422)


@login_required
@require_POST
def payout_account_remove(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    account = payouts.payout_account_get_for_user(public_id=public_id, user=request.user)
    try:
        payouts.payout_account_remove(investor=request.user, account=account)
    except (ValidationError, PermissionDenied) as exc:
        for message in exc.messages if isinstance(exc, ValidationError) else [str(exc)]:
            messages.error(request, message)
    else:
        messages.success(request, "Account removed.")
    return redirect("marketplace:payout_accounts")
