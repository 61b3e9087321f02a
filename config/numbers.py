"""Numbers people type: whole units (fractions, quantities, limits) and ids. The one
parser for them; money is config/money.py, which shares the digit rule.

Only the ASCII digits 0-9 are read. Python's int() and Decimal() also read other
scripts' digits ('١٢٣' is 123, '１２３' too) and str.isdigit() says yes to '²' and '①'
that int() then refuses; a number typed in one script and shown back in another is a
confusion we do not allow, so those are refused with one clear message."""

import re
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.db import models

USE_ASCII_DIGITS = "Use the digits 0-9."
MAX_BIGINT = 2**63 - 1
_WHOLE = re.compile(r"[+-]?[0-9]+")
# Far beyond any bound we check; longer text is never handed to int(), which refuses
# more than 4,300 digits with a ValueError.
_MAX_DIGITS = 40


def refuse_foreign_digits(text: str) -> None:
    if not text.isascii() and any(not ch.isascii() and ch.isnumeric() for ch in text):
        raise ValidationError(USE_ASCII_DIGITS, code="digits")


def parse_whole_number(
    raw, *, label: str, minimum: int = 1, maximum: int = MAX_BIGINT, messages: dict[str, str] | None = None
) -> int:
    """'1,250' -> 1250 within [minimum, maximum], or a ValidationError with a clear
    message. `messages` replaces the default text of a code: required, not_integer,
    too_small, too_large."""
    text = {
        "required": f"Enter the {label}.",
        "not_integer": f"The {label} must be a whole number, e.g. 5.",
        "too_small": f"The {label} must be at least {minimum:,}.",
        "too_large": f"The {label} is too large.",
        **(messages or {}),
    }
    typed = str(raw if raw is not None else "").replace(",", "").replace("_", "").strip()
    if not typed:
        raise ValidationError(text["required"], code="required")
    refuse_foreign_digits(typed)
    if not _WHOLE.fullmatch(typed):
        raise ValidationError(text["not_integer"], code="not_integer")
    negative = typed.startswith("-")
    if len(typed.lstrip("+-").lstrip("0")) > _MAX_DIGITS:
        raise ValidationError(
            text["too_small" if negative else "too_large"], code="too_small" if negative else "too_large"
        )
    value = int(typed)
    if value < minimum:
        raise ValidationError(text["too_small"], code="too_small")
    if value > maximum:
        raise ValidationError(text["too_large"], code="too_large")
    return value


def parse_id(raw) -> int | None:
    """A primary key from a URL or a form: the integer, or None when it is not one
    (the caller answers 404, or 'not found')."""
    try:
        return parse_whole_number(raw, label="id")
    except ValidationError:
        return None


class WholeNumberField(forms.IntegerField):
    """forms.IntegerField that reads only ASCII digits (int() would read any script's)
    and never hands int() an over-long text."""

    def to_python(self, value):
        if value in self.empty_values:
            return None
        if isinstance(value, int):
            return value
        try:
            return parse_whole_number(
                value,
                label="number",
                minimum=-MAX_BIGINT - 1,
                maximum=MAX_BIGINT,
                messages={"not_integer": self.error_messages["invalid"]},
            )
        except ValidationError as exc:
            if exc.code in ("too_small", "too_large"):
                raise ValidationError(
                    f"Enter a number between {-MAX_BIGINT - 1:,} and {MAX_BIGINT:,}.", code=exc.code
                ) from None
            raise


class IdChoiceField(forms.ModelChoiceField):
    """forms.ModelChoiceField that refuses other scripts' digits in the submitted id
    (the primary key lookup would read '١٢٣' as 123)."""

    def to_python(self, value):
        if value not in self.empty_values and not isinstance(value, int):
            refuse_foreign_digits(str(value))
        return super().to_python(value)


# ModelAdmin.formfield_overrides for back-office forms with integer columns.
# (quoted: model fields are generic only in the type stubs)
WHOLE_NUMBER_FIELDS: "dict[type[models.Field[Any, Any]], dict[str, Any]]" = {
    field: {"form_class": WholeNumberField}
    for field in (
        models.IntegerField,
        models.BigIntegerField,
        models.PositiveIntegerField,
        models.PositiveBigIntegerField,
        models.SmallIntegerField,
        models.PositiveSmallIntegerField,
    )
}
