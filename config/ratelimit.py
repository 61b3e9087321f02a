"""A fixed-window counter per user (or per client address) in the shared cache (the one
allauth's limits use), for the site's own limits: order placement and the asset page's
verify panel. The order limit is the setting MARKETPLACE_ORDER_RATE_LIMIT (count, seconds):
it counts orders placed, so an attempt that places none (refused with the reasons, a
replayed idempotency key, over the limit) is given back (`give_back`)."""

import logging
import time

from django.conf import settings
from django.core.cache import cache


def order_rate() -> tuple[int, int]:
    count, seconds = settings.MARKETPLACE_ORDER_RATE_LIMIT
    return count, seconds


def client_key(request) -> str:
    """Whom to count: the signed-in user, else the client address."""
    if request.user.is_authenticated:
        return f"user:{request.user.pk}"
    return f"ip:{(request.META.get('REMOTE_ADDR') or 'unknown')[:45]}"


logger = logging.getLogger("config.ratelimit")


def take(*, action: str, who, limit: int, window: int) -> tuple[bool, str | None]:
    """Count one attempt: (allowed, the counter's key to `give_back` the attempt with, None
    when nothing was counted). Not allowed when `who` has used up the window's allowance.

    When the cache cannot be reached the attempt is allowed and logged: these limits are
    abuse control, and what they guard (orders, the verify panel) is kept correct by the
    database (idempotency keys, row locks), so a cache outage must not fail every order
    with a 500 (make chaos found exactly that while the broker's Redis was down)."""
    bucket = int(time.time() // window)
    key = f"ratelimit:{action}:{who}:{bucket}"
    try:
        cache.add(key, 0, timeout=window + 5)
        try:
            count = cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.set(key, 1, timeout=window + 5)
            count = 1
    except Exception as exc:  # redis-py's ConnectionError, TimeoutError, ...: any cache failure
        logger.warning("rate limit %s not counted, cache unavailable: %s", action, type(exc).__name__)
        return True, None
    return count <= limit, key


def give_back(key: str | None) -> None:
    """Uncount an attempt `take` counted, for limits that count only what succeeded (the
    order limit counts orders placed, not refused attempts). The key names the window the
    attempt was counted in, so a give-back after the window turned changes nothing."""
    if key is None:
        return
    try:
        cache.decr(key)
    except ValueError:  # the window's counter already expired
        pass
    except Exception as exc:  # cache unavailable: the counter errs on the strict side
        logger.warning("rate limit attempt not given back, cache unavailable: %s", type(exc).__name__)


def hit(*, action: str, who, limit: int, window: int) -> bool:
    """Count one attempt; False when `who` has used up the window's allowance (`take`)."""
    return take(action=action, who=who, limit=limit, window=window)[0]
