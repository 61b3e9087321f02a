from django import template

from config.money import format_money, minor_to_major_text

register = template.Library()


@register.simple_tag
def money(minor: int | None, currency: str) -> str:
    """Integer minor units -> '1,250.50 USD' without ever going through float."""
    return format_money(minor, currency)


@register.simple_tag
def money_plain(minor: int | None, currency: str) -> str:
    """Integer minor units -> '1250.50', the form a money input takes back."""
    return "" if minor is None else minor_to_major_text(minor)
