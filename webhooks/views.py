"""The user's webhook endpoints at /me/webhooks/: add (the secret is shown once), list,
deliveries, disable, enable, delete. Signed-in users only (as the profile page); every
POST is counted against WEBHOOKS_RATE_LIMIT; another user's endpoint is a 404."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from accounts.http import AuthenticatedHttpRequest
from config.ratelimit import client_key, hit

from . import selectors, services
from .forms import EndpointForm


def _rate_limited(request) -> bool:
    count, window = settings.WEBHOOKS_RATE_LIMIT
    return not hit(action="webhooks", who=client_key(request), limit=count, window=window)


def _too_many(request) -> HttpResponse:
    return render(request, "429.html", status=429)


@never_cache
@login_required
def endpoints(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = EndpointForm(request.POST or None)
    if request.method == "POST":
        if _rate_limited(request):
            return _too_many(request)
        if form.is_valid():
            try:
                endpoint, secret = services.endpoint_create(
                    user=request.user, url=form.cleaned_data["url"], events=form.cleaned_data["events"]
                )
            except ValidationError as exc:
                form.add_error(None, exc)
            else:
                # Shown in this response only: never stored in the clear, never shown again.
                return render(request, "webhooks/created.html", {"endpoint": endpoint, "secret": secret}, status=201)
    return render(
        request,
        "webhooks/endpoints.html",
        {"form": form, "endpoints": selectors.endpoints_for_user(user=request.user)},
        status=422 if form.errors else 200,
    )


@login_required
def endpoint_detail(request: AuthenticatedHttpRequest, public_id) -> HttpResponse:
    endpoint = selectors.endpoint_get_for_user(public_id=public_id, user=request.user)
    return render(
        request,
        "webhooks/endpoint.html",
        {"endpoint": endpoint, "deliveries": selectors.recent_deliveries(endpoint=endpoint)},
    )


@require_POST
@login_required
def endpoint_disable(request: AuthenticatedHttpRequest, public_id) -> HttpResponse:
    endpoint = selectors.endpoint_get_for_user(public_id=public_id, user=request.user)
    if _rate_limited(request):
        return _too_many(request)
    services.endpoint_disable(endpoint=endpoint)
    messages.success(request, "The endpoint is disabled; no events are sent to it.")
    return redirect("webhooks:endpoint", public_id=endpoint.public_id)


@require_POST
@login_required
def endpoint_enable(request: AuthenticatedHttpRequest, public_id) -> HttpResponse:
    endpoint = selectors.endpoint_get_for_user(public_id=public_id, user=request.user)
    if _rate_limited(request):
        return _too_many(request)
    services.endpoint_enable(endpoint=endpoint)
    messages.success(request, "The endpoint is enabled again.")
    return redirect("webhooks:endpoint", public_id=endpoint.public_id)


@require_POST
@login_required
def endpoint_delete(request: AuthenticatedHttpRequest, public_id) -> HttpResponse:
    endpoint = selectors.endpoint_get_for_user(public_id=public_id, user=request.user)
    if _rate_limited(request):
        return _too_many(request)
    services.endpoint_delete(endpoint=endpoint)
    messages.success(request, "The endpoint was deleted.")
    return redirect("webhooks:endpoints")
