"""Money: integer minor units plus an ISO 4217 code, never floats. The one place that
knows which currencies the platform takes and turns amounts into text and back.

Every supported currency has two decimal places (cents), so one minor unit is 1/100 of
the major unit everywhere: parsing, display, the catalogue's price filter. A currency
with another exponent (JPY 0, BHD 3) needs its exponent here before it can be added."""

import re
from decimal import Decimal

from django.contrib.humanize.templatetags.humanize import intcomma
from django.core.exceptions import ValidationError

from config.numbers import refuse_foreign_digits

CURRENCIES = {
    "USD": "US dollar",
    "EUR": "Euro",
    "GBP": "Pound sterling",
    "CHF": "Swiss franc",
    "SGD": "Singapore dollar",
    "HKD": "Hong Kong dollar",
    "CAD": "Canadian dollar",
    "AUD": "Australian dollar",
}
CURRENCY_CHOICES = [(code, f"{code} · {name}") for code, name in CURRENCIES.items()]
MINOR_PER_MAJOR = 100
# Amounts are stored in bigint columns.
MAX_MINOR = 2**63 - 1
_PLAIN_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")


def currency_clean(value) -> str:
    """'eur ' -> 'EUR'; anything the platform does not settle in is refused."""
    code = str(value or "").strip().upper()
    if code not in CURRENCIES:
        raise ValidationError(
            f"We settle in {', '.join(CURRENCIES)}; {code or 'an empty currency'} is not one of them.", code="currency"
        )
    return code


def parse_major_to_minor(value, *, field: str) -> int:
    """'1,250.50' -> 125050. Plain decimal notation in ASCII digits only: no exponents
    ('1e30'), no NaN or Infinity. Decimal only for parsing; never float."""
    text = str(value if value is not None else "").replace(",", "").strip()
    refuse_foreign_digits(text)
    if not _PLAIN_DECIMAL.fullmatch(text):
        raise ValidationError(f"Enter the {field} as a number, e.g. 1250.00.", code="invalid")
    amount = Decimal(text)
    if amount <= 0:
        raise ValidationError(f"The {field} must be greater than zero.", code="not_positive")
    # Checked before any arithmetic: quantize() beyond the context's 28 digits raises.
    if amount.adjusted() >= len(str(MAX_MINOR // MINOR_PER_MAJOR)):
        raise ValidationError(f"The {field} is too large.", code="too_large")
    if amount != amount.quantize(Decimal("0.01")):
        raise ValidationError(f"The {field} can have at most two decimal places.", code="decimal_places")
    minor = int(amount.scaleb(2))
    if minor > MAX_MINOR:
        raise ValidationError(f"The {field} is too large.", code="too_large")
    return minor


def _split(minor: int) -> tuple[str, int, int]:
    """125050 -> ('', 1250, 50); -5 -> ('-', 0, 5). Integers only."""
    major, cents = divmod(abs(int(minor)), MINOR_PER_MAJOR)
    return ("-" if minor < 0 else ""), major, cents


def minor_to_major_text(minor: int) -> str:
    """125050 -> '1250.50' (for form initial values and CSV; no grouping)."""
    sign, major, cents = _split(minor)
    return f"{sign}{major}.{cents:02d}"


def format_money(minor: int | None, currency: str) -> str:
    """Integer minor units -> '1,250.50 USD' without ever going through float."""
    if minor is None:
        return "—"
    sign, major, cents = _split(minor)
    return f"{sign}{intcomma(major)}.{cents:02d} {currency}"
