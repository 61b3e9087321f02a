"""Pages of income distributions (marketplace/distributions.py has the rules):

- the investor's distributions: upcoming ones of the assets they hold, what they received
  (or what is held, why, and what to do), and their tax residence and withholding rate;
- the issuer's page of one of their assets: declare a distribution, see each one's state
  and why it is not paid yet, cancel one still waiting for approval.

Thin views: bind a form, call one service, redirect. Who may declare is the engine's
`can_declare` (anybody else gets a 404)."""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from config.numbers import parse_whole_number
from config.ratelimit import client_key, hit

from . import distribution_selectors as selectors
from . import distributions
from .distribution_forms import (
    DistributionCancelForm,
    DistributionDeclareForm,
    declaration_currency,
    initial_declaration,
    service_errors_onto,
)

# Declarations and cancellations per user per window: abuse control (each one is a
# row for staff to review).
DECLARE_RATE = (20, 60)


def _page_number(raw: str | None) -> int:
    try:
        return parse_whole_number(raw or "1", label="page number", maximum=10**6)
    except ValidationError:
        return 1


@login_required
@require_GET
def my_distributions(request: HttpRequest) -> HttpResponse:
    user = request.user
    tax = selectors.tax_summary(user=user)
    return render(
        request,
        "marketplace/distributions.html",
        {
            "tax": tax,
            "upcoming": selectors.upcoming_for_investor(user=user, rate_bps=tax.rate.rate_bps),
            "received": selectors.received_page(user=user, page_number=_page_number(request.GET.get("page"))),
            "reinvest": selectors.reinvestment_lines(user=user),
        },
    )


@login_required
@require_POST
def reinvestment_update(request: HttpRequest, asset_public_id: uuid.UUID) -> HttpResponse:
    """Set or remove the reinvestment instruction for an asset the investor holds."""
    from assets.models import Asset
    from config.money import parse_major_to_minor

    asset = Asset.objects.filter(public_id=asset_public_id).first()
    if asset is None:
        raise Http404("No such asset.")
    target = (request.POST.get("target") or "")[:16]
    limit_minor = None
    try:
        if target == "market":
            limit_minor = parse_major_to_minor(request.POST.get("limit_price") or "", field="limit price")
        distributions.reinvestment_set(investor=request.user, asset=asset, target=target, limit_price_minor=limit_minor)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect(f"{reverse('marketplace:distributions')}#reinvestment")
    messages.success(
        request,
        f"Distributions of {asset.name} will be reinvested."
        if target != distributions.REINVEST_NONE
        else f"Distributions of {asset.name} will be paid as cash.",
    )
    return redirect(f"{reverse('marketplace:distributions')}#reinvestment")


def _declare_page(request: HttpRequest, asset, form: DistributionDeclareForm, *, status: int = 200, error: str = ""):
    context: dict[str, Any] = {
        "asset": asset,
        "form": form,
        "currency": declaration_currency(asset),
        "lines": selectors.asset_distributions_for_issuer(asset=asset),
        "cancel_form": DistributionCancelForm(),
        "error": error,
    }
    return render(request, "marketplace/distributions_declare.html", context, status=status)


def _rate_limited(request: HttpRequest) -> str:
    limit, window = DECLARE_RATE
    if hit(action="distribution_declare", who=client_key(request), limit=limit, window=window):
        return ""
    return f"You can send {limit} declarations or cancellations a minute; wait a minute and try again."


@login_required
@require_http_methods(["GET", "POST"])
def distribution_declare(request: HttpRequest, asset_public_id: uuid.UUID) -> HttpResponse:
    """The issuer's distributions of one asset and the form to declare a new one."""
    asset = selectors.asset_get_for_declarer(public_id=asset_public_id, user=request.user)
    if request.method == "GET":
        form = DistributionDeclareForm(asset=asset, initial=initial_declaration(timezone.localdate()))
        return _declare_page(request, asset, form)
    if error := _rate_limited(request):
        return _declare_page(
            request, asset, DistributionDeclareForm(request.POST, asset=asset), status=429, error=error
        )
    form = DistributionDeclareForm(request.POST, asset=asset)
    if form.is_valid():
        try:
            distribution = distributions.distribution_declare(actor=request.user, **form.service_kwargs())
        except ValidationError as exc:
            service_errors_onto(form, exc)
        except PermissionDenied as exc:
            form.add_error(None, str(exc) or "You may not declare distributions of this asset.")
        else:
            messages.success(
                request,
                f"{distribution.get_kind_display()} declared. A member of our staff approves it; "
                "it is paid once it is funded and its payment date has come.",
            )
            return redirect("marketplace:distribution_declare", asset_public_id=asset.public_id)
    return _declare_page(request, asset, form, status=400)


@login_required
@require_POST
def distribution_cancel(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    """The issuer cancels a distribution still waiting for approval (staff later ones in
    the back office); the reason is required."""
    distribution = selectors.distribution_get_for_declarer(public_id=public_id, user=request.user)
    back = redirect("marketplace:distribution_declare", asset_public_id=distribution.asset.public_id)
    if error := _rate_limited(request):
        messages.error(request, error)
        return back
    form = DistributionCancelForm(request.POST)
    if not form.is_valid():
        for errors in form.errors.values():
            for text in errors:
                messages.error(request, text)  # type: ignore[arg-type]  # an ErrorList yields strings
        return back
    try:
        distributions.distribution_cancel(
            distribution=distribution, actor=request.user, reason=form.cleaned_data["reason"]
        )
    except (ValidationError, PermissionDenied) as exc:
        for text in exc.messages if isinstance(exc, ValidationError) else [str(exc)]:
            messages.error(request, text)
    else:
        messages.success(
            request, f"{distribution.get_kind_display()} of {distribution.payment_date:%d %b %Y} cancelled."
        )
    return back
