"""The catalogue's rendered results, cached per filter set and page.

The results fragment (12 cards, the count and the pager) is most of the catalogue's cost
(docs/benchmarks.md) and the same for every visitor, so it is rendered once per
(catalogue version, filters, page, language) and kept in the shared cache.

The version (config/fragment_cache.py) is replaced whenever any asset or offering is
saved or deleted (every write of the app goes through `save()`, the admin included; the
purchase that sells the last fractions bumps it itself). Entries also expire after
CATALOGUE_CACHE_SECONDS, so even a write that bypassed `save()` (a raw
`QuerySet.update()`) shows within that time. The full page's content (the filter form
echoing the parameters, and the results) is cached the same way, so a page view renders
only the site's frame around it.
Prices shown here are indicative; the offering page and the order itself always read the
database. The cards' last trade price and change (marketplace.market_data) replace the
version when a trade prints a new last price (`trade_printed`, after the commit).
"""

import hashlib

from django.conf import settings
from django.db.models.signals import post_delete, post_save
from django.utils.translation import get_language

from config import fragment_cache

VERSION_KEY = "assets:catalogue:version"


def catalogue_changed(**_) -> None:
    fragment_cache.bump(VERSION_KEY)


def results_key(params: dict[str, str], part: str = "results") -> str:
    canonical = "&".join(f"{name}={params.get(name, '')}" for name in sorted(params))
    digest = hashlib.sha256(f"{get_language()}|{part}|{canonical}".encode()).hexdigest()[:32]
    return f"assets:catalogue:{digest}"


def results_get_or_render(params: dict[str, str], render, part: str = "results") -> str:
    """The cached HTML of `part` (the results fragment, or the page's whole content) for
    these parameters, or `render()`'s, cached (one cache round trip on a hit)."""
    return fragment_cache.get_or_compute(
        results_key(params, part), [VERSION_KEY], render, settings.CATALOGUE_CACHE_SECONDS
    )


def trade_printed(created: bool = False, **_) -> None:
    """A trade printed a new last price (the cards show it and its change): a new
    version once the matching transaction commits. Only then: the book's lock is held
    until the commit, and no network call happens under it. The change against the
    previous close also moves at midnight UTC without a trade; CATALOGUE_CACHE_SECONDS
    bounds that."""
    if created:
        fragment_cache.bump_after_commit(VERSION_KEY)


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
    post_delete.connect(
        catalogue_changed,
        sender=apps.get_model("marketplace", "Offering"),
        dispatch_uid="assets.catalogue_changed.offering_delete",
    )
    post_save.connect(
        trade_printed, sender=apps.get_model("marketplace", "Trade"), dispatch_uid="assets.catalogue_trade_printed"
    )
