from django import template
from django.contrib.humanize.templatetags.humanize import intcomma

register = template.Library()


@register.simple_tag
def money(minor: int | None, currency: str) -> str:
    """Integer minor units -> '1,250.50 USD' without ever going through float."""
    if minor is None:
        return "—"
    sign = "-" if minor < 0 else ""
    major, cents = divmod(abs(int(minor)), 100)
    return f"{sign}{intcomma(major)}.{cents:02d} {currency}"
