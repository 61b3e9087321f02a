"""Reads of personal access tokens: a user's list, one of theirs, and the token a
bearer secret names."""

import hmac
import re

from django.db.models import QuerySet
from django.http import Http404

from .models import ApiToken
from .services import secret_sha256

# rwa_<8 letters or digits>_<token_urlsafe(32): 43 characters of A-Z a-z 0-9 - _>
TOKEN_FORMAT = re.compile(r"rwa_([A-Za-z0-9]{8})_([A-Za-z0-9_-]{43})")


def api_tokens_for(*, user) -> QuerySet[ApiToken]:
    return ApiToken.objects.filter(user=user).order_by("-created_at", "-pk")


def api_token_get_for_user(*, pk: int, user) -> ApiToken:
    token = ApiToken.objects.filter(pk=pk, user=user).first()
    if token is None:
        raise Http404
    return token


def api_token_for_secret(text: str) -> ApiToken | None:
    """The token `text` names when it is well formed and its secret matches (compared in
    constant time), else None. Revocation, expiry and the user's standing are the
    caller's to check (api/auth.py), so it can say which failed in its log."""
    match = TOKEN_FORMAT.fullmatch(text or "")
    if match is None:
        return None
    prefix, secret = match.groups()
    token = ApiToken.objects.select_related("user").filter(prefix=prefix).first()
    if token is None or not hmac.compare_digest(token.secret_sha256, secret_sha256(secret)):
        return None
    return token
