"""Values computed from the database, cached in the shared cache while the rows they were
computed from are unchanged.

Each cached value names the *version keys* it depends on (say, the catalogue's, or one
asset's market data). A version key holds a random token; a write that changes what such
values show replaces the token (`bump`: at once, so this process never serves its own stale
value, and again when the transaction commits, so a value computed by another request
between the write and the commit, still seeing the old rows, is dropped too). An entry
stores the tokens it was computed under and is served only while they are all current,
so a hit costs one round trip to the cache (`get_many` of the version keys and the entry).
Entries also expire after their timeout, which bounds staleness for any write that did
not bump (a raw `QuerySet.update()`).

A cache that cannot be reached costs nothing but speed: values are computed from the
database (a warning is logged), and a bump that could not be stored leaves old entries
only until their timeout.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from typing import TypeVar

from django.core.cache import cache
from django.db import transaction

T = TypeVar("T")
logger = logging.getLogger("config.fragment_cache")


def _set_token(version_key: str) -> None:
    try:
        cache.set(version_key, uuid.uuid4().hex, None)
    except Exception as exc:  # noqa: BLE001 - any cache failure: entries expire by their timeout
        logger.warning("cache version %s not replaced (%s)", version_key, type(exc).__name__)


def bump(version_key: str) -> None:
    """What depends on `version_key` changed: recompute it now and after the commit."""
    _set_token(version_key)
    transaction.on_commit(lambda: _set_token(version_key))


def bump_after_commit(version_key: str) -> None:
    """The same, for a write made under a row lock held until the commit: no network call
    while the lock is held."""
    transaction.on_commit(lambda: _set_token(version_key))


def get_or_compute(
    key: str,
    versions: Sequence[str],
    compute: Callable[[], T],
    timeout: int,
    fresh: Callable[[T], bool] | None = None,
) -> T:
    """`compute()`'s value, from the cache while every version in `versions` is the one it
    was computed under (and `fresh(value)` holds, for a value that goes stale with time
    alone). `timeout` 0 turns the cache off (computed every time)."""
    if not timeout:
        return compute()
    try:
        found = cache.get_many([*versions, key])
        tokens = []
        for version in versions:
            token = found.get(version)
            if token is None:  # first use, or evicted: whoever adds first sets the token
                token = cache.get_or_set(version, uuid.uuid4().hex, None)
            tokens.append(token)
    except Exception as exc:  # noqa: BLE001 - any cache failure: the database answers
        logger.warning("cache unavailable for %s (%s); computed", key, type(exc).__name__)
        return compute()
    entry = found.get(key)
    if entry is not None and entry[0] == tokens and (fresh is None or fresh(entry[1])):
        return entry[1]
    value = compute()
    try:
        cache.set(key, (tokens, value), timeout)
    except Exception as exc:  # noqa: BLE001
        logger.warning("cache unavailable for %s (%s); not stored", key, type(exc).__name__)
    return value
