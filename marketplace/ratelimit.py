"""A fixed-window counter per user in the shared cache (the one allauth's limits use),
for order placement. `MARKETPLACE_ORDER_RATE_LIMIT = (count, seconds)` overrides it."""

import time

from django.conf import settings
from django.core.cache import cache

DEFAULT_ORDER_RATE = (10, 60)


def order_rate() -> tuple[int, int]:
    return tuple(getattr(settings, "MARKETPLACE_ORDER_RATE_LIMIT", DEFAULT_ORDER_RATE))


def hit(*, action: str, user_id: int, limit: int, window: int) -> bool:
    """Count one attempt; False when the user has used up the window's allowance."""
    bucket = int(time.time() // window)
    key = f"ratelimit:{action}:{user_id}:{bucket}"
    cache.add(key, 0, timeout=window + 5)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=window + 5)
        count = 1
    return count <= limit
