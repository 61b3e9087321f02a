"""{% market_controls_state market as controls %}: the controls of a book for the trade
page's controls panel (marketplace/trade/_controls.html), from the one selector."""

from django import template

from marketplace.market_controls_selectors import market_controls_state as _state

register = template.Library()


@register.simple_tag
def market_controls_state(market):
    return _state(market=market)
