"""{% payment_reference user %}: the investor's payment reference in its printed form
(RF18 5390 0754 7034), created on first need (marketplace/funding.py)."""

from django import template

from marketplace import funding

register = template.Library()


@register.simple_tag
def payment_reference(user) -> str:
    if user is None or not getattr(user, "is_authenticated", False):
        return ""
    return funding.rf_format(funding.payment_reference_for(user).reference)
