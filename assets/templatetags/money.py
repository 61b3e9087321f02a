from django import template

from config.money import format_money

register = template.Library()


@register.simple_tag
def money(minor: int | None, currency: str) -> str:
    """Integer minor units -> '1,250.50 USD' without ever going through float."""
    return format_money(minor, currency)
