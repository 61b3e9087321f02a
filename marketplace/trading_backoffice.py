"""Staff changes to a market's fees (maker and taker), for the back office (halts, bands,
trading mode and hours are marketplace.market_controls'). Under the book's lock, so a change never lands in the middle of a match
(trades record the rates they used; a buy order never pays more than the rate its
reservation covers, docs/trading.md "Fees and rounding"). Audited."""

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from compliance.audit import audit_record, model_snapshot

from .locks import market_lock
from .models import Market

MARKET_EDITABLE = ("maker_fee_bps", "taker_fee_bps")


@transaction.atomic(durable=True)
def market_update(*, market: Market, actor, fields: dict, reason: str = "") -> Market:
    """Change a market's fees (marketplace.change_market). Raises PermissionDenied or
    ValidationError (an unknown field, a fee above 100 %)."""
    if not (actor is not None and actor.is_active and actor.is_staff and actor.has_perm("marketplace.change_market")):
        raise PermissionDenied("Only staff with the right permission can do this.")
    unknown = set(fields) - set(MARKET_EDITABLE)
    if unknown:
        raise ValidationError(f"These fields cannot be changed here: {', '.join(sorted(unknown))}.")
    market = market_lock(pk=market.pk)
    before = model_snapshot(market, MARKET_EDITABLE)
    for name, value in fields.items():
        setattr(market, name, value)
    market.full_clean()
    market.save(update_fields=[*fields, "updated_at"])
    audit_record(
        actor=actor,
        action="market.updated",
        target=market,
        before=before,
        after=model_snapshot(market, MARKET_EDITABLE),
        reason=reason,
    )
    return market
