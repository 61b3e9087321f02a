"""config.fragment_cache: served while its versions hold, recomputed after a bump, and
computed from the database when the cache cannot be reached."""

import logging
import uuid

import pytest
from django.test import override_settings

from config import fragment_cache

pytestmark = pytest.mark.django_db

DEAD_REDIS = {"default": {"BACKEND": "config.redis_cache.RedisCache", "LOCATION": "redis://127.0.0.1:1/0"}}


@pytest.fixture
def keys():
    tag = uuid.uuid4().hex[:8]
    return f"test:value:{tag}", f"test:version-a:{tag}", f"test:version-b:{tag}"


def counter():
    calls = []

    def compute():
        calls.append(1)
        return len(calls)

    return compute, calls


def test_served_from_the_cache_until_either_version_is_bumped(keys, django_capture_on_commit_callbacks):
    key, a, b = keys
    compute, calls = counter()
    assert [fragment_cache.get_or_compute(key, [a, b], compute, 60) for _ in range(3)] == [1, 1, 1]
    fragment_cache.bump(b)
    assert fragment_cache.get_or_compute(key, [a, b], compute, 60) == 2
    with django_capture_on_commit_callbacks(execute=True):
        fragment_cache.bump_after_commit(a)
        assert fragment_cache.get_or_compute(key, [a, b], compute, 60) == 2  # not before the commit
    assert fragment_cache.get_or_compute(key, [a, b], compute, 60) == 3
    assert len(calls) == 3


def test_a_bump_also_lands_after_the_commit(keys, django_capture_on_commit_callbacks):
    """A value computed between the write and its commit (old rows) is dropped at commit."""
    key, a, _ = keys
    compute, _ = counter()
    with django_capture_on_commit_callbacks(execute=True):
        fragment_cache.bump(a)
        assert fragment_cache.get_or_compute(key, [a], compute, 60) == 1  # computed mid-transaction
    assert fragment_cache.get_or_compute(key, [a], compute, 60) == 2


def test_timeout_zero_computes_every_time(keys):
    key, a, _ = keys
    compute, _ = counter()
    assert [fragment_cache.get_or_compute(key, [a], compute, 0) for _ in range(2)] == [1, 2]


def test_an_unreachable_cache_computes_and_warns(keys, caplog):
    key, a, _ = keys
    compute, _ = counter()
    with override_settings(CACHES=DEAD_REDIS), caplog.at_level(logging.WARNING, logger="config.fragment_cache"):
        values = [fragment_cache.get_or_compute(key, [a], compute, 60) for _ in range(2)]
        fragment_cache.bump(a)
    assert values == [1, 2]
    assert "cache unavailable" in caplog.text and "not replaced" in caplog.text
