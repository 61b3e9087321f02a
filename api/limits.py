"""Rate limits of the API on config/ratelimit.py's counter (the shared cache): every
request per client address, authenticated ones also per token, order placement per
token more tightly, failed authentication per address. Each is a setting (count,
seconds). Answers carry the tightest limit in RateLimit-Limit / -Remaining / -Reset; a
refused request is a 429 problem with Retry-After (api/errors.py)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from ninja.errors import Throttled
from ninja.throttling import BaseThrottle

from config.ratelimit import take


@dataclass(frozen=True)
class LimitState:
    limit: int
    remaining: int
    reset: int  # seconds until the window turns

    def apply(self, response: HttpResponse) -> None:
        response["RateLimit-Limit"] = str(self.limit)
        response["RateLimit-Remaining"] = str(self.remaining)
        response["RateLimit-Reset"] = str(self.reset)


def client_address(request: HttpRequest) -> str:
    # The same reading of the client as config.ratelimit.client_key's.
    return (request.META.get("REMOTE_ADDR") or "unknown")[:45]


def count(request: HttpRequest, *, action: str, who: str, setting: str) -> bool:
    """Count one request against `setting`; False when over. Records the state on the
    request (the tightest of its limits, or the one that refused) for the headers."""
    limit, window = getattr(settings, setting)
    allowed, key = take(action=f"api:{action}", who=who, limit=limit, window=window)
    used = 0
    if key is not None:
        try:
            used = int(cache.get(key) or 0)
        except Exception:  # cache unavailable: take() already let the request through
            used = 0
    state = LimitState(limit, max(0, limit - used), max(1, window - int(time.time()) % window))
    if getattr(request, "api_refused", False):
        return allowed  # the headers keep the limit that refused first
    previous: LimitState | None = getattr(request, "api_rate_limit", None)
    if not allowed or previous is None or state.remaining < previous.remaining:
        request.api_rate_limit = state  # type: ignore[attr-defined]
    request.api_refused = not allowed  # type: ignore[attr-defined]
    return allowed


class PerAddress(BaseThrottle):
    def allow_request(self, request: HttpRequest) -> bool:
        return count(request, action="address", who=client_address(request), setting="API_RATE_LIMIT_ADDRESS")


class PerToken(BaseThrottle):
    def allow_request(self, request: HttpRequest) -> bool:
        token = request.auth  # type: ignore[attr-defined]
        return count(request, action="token", who=f"token:{token.pk}", setting="API_RATE_LIMIT_TOKEN")


class OrdersPerToken(BaseThrottle):
    def allow_request(self, request: HttpRequest) -> bool:
        token = request.auth  # type: ignore[attr-defined]
        return count(request, action="orders", who=f"token:{token.pk}", setting="API_RATE_LIMIT_ORDERS")


def failed_authentication(request: HttpRequest) -> None:
    """Count a presented token that did not authenticate; past the limit the address is
    answered 429 instead of 401 (guessing is slowed, not only futile)."""
    if not count(request, action="auth_failed", who=client_address(request), setting="API_RATE_LIMIT_AUTH_FAILED"):
        raise Throttled(wait=None)


PUBLIC: list[BaseThrottle] = [PerAddress()]
AUTHENTICATED: list[BaseThrottle] = [PerAddress(), PerToken()]
PLACING: list[BaseThrottle] = [PerAddress(), PerToken(), OrdersPerToken()]
