"""Bearer authentication with personal access tokens, and the scope each operation
needs. Only `Authorization: Bearer rwa_…` authenticates: a session cookie does not (no
CSRF question arises, and a browser tab cannot act through the API). The token yields
its user for that user's own data; it never carries staff rights: the API has no
back-office operation, and the ownership checks here ignore staff permissions."""

from __future__ import annotations

import logging

from django.http import HttpRequest
from django.utils import timezone
from ninja.errors import AuthorizationError
from ninja.security import HttpBearer

from . import limits
from .models import ApiToken
from .selectors import api_token_for_secret
from .services import api_token_touch

logger = logging.getLogger("api")


class TokenAuth(HttpBearer):
    """A valid token with `scope` (read or trade): the secret's hash matches, it is
    neither revoked nor expired, and its user is active. Anything else is a 401, a token
    without the scope a 403."""

    openapi_bearerFormat = "rwa_<prefix>_<secret>"
    openapi_description = (
        "A personal access token, created on the profile's API tokens page (/accounts/api-tokens/). Scopes: "
        "`read` for the /me reads, `trade` to place and cancel orders."
    )

    def __init__(self, scope: str):
        super().__init__()
        self.scope = scope

    def authenticate(self, request: HttpRequest, token: str) -> ApiToken | None:
        found = api_token_for_secret(token)
        now = timezone.now()
        if found is None or not found.is_usable(now) or not found.user.is_active:
            if found is not None:
                logger.info("API token %s refused (revoked, expired or inactive user)", found.prefix)
            limits.failed_authentication(request)
            return None
        if not found.has_scope(self.scope):
            raise AuthorizationError(message=f"This operation needs a token with the “{self.scope}” scope.")
        api_token_touch(token=found, now=now)
        return found


READ = TokenAuth(ApiToken.Scope.READ)
TRADE = TokenAuth(ApiToken.Scope.TRADE)


def token_user(request: HttpRequest):
    """The authenticated token's user (never request.user: a session is not the API's)."""
    return request.auth.user  # type: ignore[attr-defined]
