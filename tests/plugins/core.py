import uuid

import pytest
from django.conf import settings
from django.core.cache import cache


def pytest_configure(config):
    # Each run gets its own cache namespace in the shared Redis, so rate-limit counters
    # never leak between runs (or between concurrent runs on one machine).
    settings.CACHES["default"]["KEY_PREFIX"] = f"rwa-test-{uuid.uuid4().hex[:8]}"


@pytest.fixture(autouse=True)
def _isolated_cache():
    yield
    backend = settings.CACHES["default"]["BACKEND"]
    if backend.endswith("RedisCache"):
        client = cache._cache.get_client(write=True)
        prefix = settings.CACHES["default"]["KEY_PREFIX"]
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            client.delete(*keys)
    else:
        cache.clear()


@pytest.fixture
def password():
    return "Corr3ct-Horse-Battery"
