"""The catalogue's rendered results, cached per filter set and page.

The results fragment (12 cards, the count and the pager) is most of the catalogue's cost
(docs/benchmarks.md) and the same for every visitor, so it is rendered once per
(catalogue version, filters, page, language) and kept in the shared cache.

The version is a random token in the cache, replaced whenever any asset is saved or
deleted (every write of the app goes through `save()`, the admin included): right away,
so this process never serves its own stale page, and again when the transaction commits,
so a page rendered by another request between the write and the commit (still seeing the
old rows) is dropped too. Entries also expire after CATALOGUE_CACHE_SECONDS, so even a
write that bypassed `save()` (a raw `QuerySet.update()`) shows within that time.
Prices shown here are indicative; the offering page and the order itself always read the
database. The cards' last trade price and change (marketplace.market_data) replace the
version when a trade prints a new last price (`trade_printed`, after the commit).
"""

import hashlib
import uuid

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.utils.translation import get_language

VERSION_KEY = "assets:catalogue:version"


def _timeout() -> int:
    return settings.CATALOGUE_CACHE_SECONDS


def catalogue_changed(**_) -> None:
    cache.set(VERSION_KEY, uuid.uuid4().hex, None)
    transaction.on_commit(lambda: cache.set(VERSION_KEY, uuid.uuid4().hex, None))


def results_key(params: dict[str, str]) -> str:
    version = cache.get_or_set(VERSION_KEY, lambda: uuid.uuid4().hex, None)
    canonical = "&".join(f"{name}={params.get(name, '')}" for name in sorted(params))
    digest = hashlib.sha256(f"{get_language()}|{canonical}".encode()).hexdigest()[:32]
    return f"assets:catalogue:{version}:{digest}"


def results_get_or_render(params: dict[str, str], render) -> str:
    """The cached results HTML for these parameters, or `render()`'s, cached."""
    if not _timeout():
        return render()
    key = results_key(params)
    html = cache.get(key)
    if html is None:
        html = render()
        cache.set(key, html, _timeout())
    return html


def trade_printed(created: bool = False, **_) -> None:
    """A trade printed a new last price (the cards show it and its change): a new
    version once the matching transaction commits. Only then: the book's lock is held
    until the commit, and no network call happens under it. The change against the
    previous close also moves at midnight UTC without a trade; CATALOGUE_CACHE_SECONDS
    bounds that."""
    if created:
        transaction.on_commit(lambda: cache.set(VERSION_KEY, uuid.uuid4().hex, None))


def connect() -> None:
    from django.apps import apps

    from .models import Asset

    post_save.connect(catalogue_changed, sender=Asset, dispatch_uid="assets.catalogue_changed.save")
    post_delete.connect(catalogue_changed, sender=Asset, dispatch_uid="assets.catalogue_changed.delete")
    # An offering's status (sold out, closed, reopened) shows on its card; the purchase that
    # sells the last fractions bypasses save() and calls catalogue_changed itself.
    post_save.connect(
        catalogue_changed,
        sender=apps.get_model("marketplace", "Offering"),
        dispatch_uid="assets.catalogue_changed.offering",
    )
    post_save.connect(
        trade_printed, sender=apps.get_model("marketplace", "Trade"), dispatch_uid="assets.catalogue_trade_printed"
    )
