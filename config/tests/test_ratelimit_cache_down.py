"""The site's own rate limits fail open, with a warning, when the cache is unreachable."""

import logging

from django.test import override_settings

from config.ratelimit import hit

DEAD_REDIS = {
    "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:1/0"}
}


def test_an_unreachable_cache_allows_the_attempt_and_logs_it(caplog):
    with override_settings(CACHES=DEAD_REDIS), caplog.at_level(logging.WARNING, logger="config.ratelimit"):
        allowed = [hit(action="order", who="user:1", limit=1, window=60) for _ in range(3)]

    assert allowed == [True, True, True]  # the limit of 1 could not be counted
    assert "rate limit order not counted, cache unavailable" in caplog.text


def test_a_reachable_cache_still_limits():
    results = [hit(action="order-test", who="user:limit-check", limit=2, window=60) for _ in range(3)]

    assert results == [True, True, False]
