"""The profile's "API tokens" page: create a personal access token (its secret shown
once), list them (never the secret) and revoke one. The same sign-in rule as the profile
page; creating and revoking are rate limited."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from config.ratelimit import client_key, hit

from .forms import ApiTokenForm
from .selectors import api_token_get_for_user, api_tokens_for
from .services import api_token_create, api_token_revoke

# Token creations and revocations per user per window: (count, seconds).
CHANGE_RATE = (10, 3600)


def _over_limit(request: HttpRequest) -> bool:
    limit, window = CHANGE_RATE
    return not hit(action="api_token_change", who=client_key(request), limit=limit, window=window)


def _page(request: HttpRequest, form: ApiTokenForm, *, created=None, secret: str = "", status: int = 200):
    tokens = list(api_tokens_for(user=request.user))
    context = {"form": form, "tokens": tokens, "created": created, "secret": secret}
    return render(request, "api/tokens.html", context, status=status)


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def api_tokens(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        return _page(request, ApiTokenForm())
    if _over_limit(request):
        return render(request, "429.html", status=429)
    form = ApiTokenForm(request.POST)
    if not form.is_valid():
        return _page(request, form, status=422)
    try:
        token, secret = api_token_create(user=request.user, **form.token_terms())
    except ValidationError as exc:
        for field, errors in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
        return _page(request, form, status=422)
    # Rendered, not redirected: the secret exists only in this answer (never_cache: no copy kept).
    return _page(request, ApiTokenForm(), created=token, secret=secret, status=201)


@login_required
@require_POST
def api_token_revoke_view(request: HttpRequest, pk: int) -> HttpResponse:
    token = api_token_get_for_user(pk=pk, user=request.user)
    if _over_limit(request):
        return render(request, "429.html", status=429)
    api_token_revoke(token=token, actor=request.user)
    messages.success(request, f"The token “{token.name}” ({token.prefix}) is revoked; it no longer works.")
    return redirect("api:tokens")
