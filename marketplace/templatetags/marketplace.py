from django import template
from django.core.exceptions import ObjectDoesNotExist

from ..distribution_selectors import asset_distributions_public
from ..selectors import offering_for_asset, offering_stats

register = template.Library()

# Eligibility failures that depend on the quantity typed: they do not disable the button.
QUANTITY_CODES = {"quantity_invalid", "below_min_holding", "above_max_holding"}


@register.filter
def bps(value) -> str:
    """150 -> '1.50%' (integers only)."""
    value = int(value or 0)
    return f"{value // 100}.{value % 100:02d}%"


@register.filter
def blocks_purchase(eligibility) -> bool:
    return any(f.code not in QUANTITY_CODES for f in eligibility.failures)


# One word per settlement state, the same for primary orders and trades on every page (the
# order and trade pages, the portfolio, the trade page): delivered on chain is "Settled".
SETTLEMENT_WORDS = {
    "reserved": "Reserved",
    "matched": "Matched",
    "submitted": "Submitted",
    "settled": "Settled",
    "confirmed": "Settled",
    "failed": "Settlement failed",
    "refunded": "Refunded",
    "reversed": "Reversed",
}


@register.filter
def settlement_word(status) -> str:
    """The investor's word for an order's or a trade's settlement state."""
    return SETTLEMENT_WORDS.get(str(status), str(status).replace("_", " ").capitalize())


@register.filter
def lookup(mapping, key):
    return mapping.get(key) if mapping else None


@register.filter
def offering_window(asset) -> tuple:
    """(opens_at, closes_at): the offering's once it is open (staff may have moved it),
    what the issuer proposed before."""
    try:
        offering = asset.offering
    except ObjectDoesNotExist:
        return asset.offering_opens_at, asset.offering_closes_at
    return offering.opens_at, offering.closes_at


@register.inclusion_tag("marketplace/includes/offering_panel.html", takes_context=True)
def offering_panel(context, asset):
    """The offering's state and the way to buy, for the asset page."""
    return {"asset": asset, "offering": offering_for_asset(asset=asset), "user": context.get("user")}


@register.simple_tag
def offering_progress(assets):
    """{asset_id: OfferingStats} for the issuer's pages, in a constant number of queries."""
    return offering_stats(asset_ids=[a.pk for a in assets])


@register.simple_tag
def offering_progress_one(asset):
    return offering_stats(asset_ids=[asset.pk]).get(asset.pk)


@register.inclusion_tag("marketplace/_asset_distributions.html", takes_context=True)
def asset_distributions(context, asset):
    """The asset page's distributions: approved, being paid and paid ones (one query)."""
    return {"asset": asset, "rows": asset_distributions_public(asset=asset), "user": context.get("user")}
