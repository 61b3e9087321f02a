"""Forms of the secondary market's pages: they turn what an investor typed into the
engine's typed values (whole quantity, limit price in minor units, an aware expiry) with
a clear message for anything else, and leave every trading rule to the engine
(`trading_selectors.order_input_failures`, the one place for them)."""

import uuid
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from config.money import parse_major_to_minor
from config.numbers import parse_whole_number

from .models import TradeOrder
from .trading_selectors import order_input_failures

Side = TradeOrder.Side
TIF = TradeOrder.TimeInForce

# The engine's name of each field (FieldFailure.field) -> the form's.
ENGINE_FIELDS = {
    "side": "side",
    "quantity": "quantity",
    "limit_price_minor": "limit_price",
    "time_in_force": "time_in_force",
    "expires_at": "expires_at",
}
EXPIRED_FORM = "The form expired; reload the page and try again."
# The inputs the live quote reads (hx-include), not the CSRF token or the idempotency key.
QUOTED = "quoted"
EXPIRY_FORMATS = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S"]


def parse_trade_quantity(raw) -> int:
    return parse_whole_number(
        raw,
        label="quantity",
        messages={
            "required": "Enter how many fractions.",
            "not_integer": "Fractions are whole units: enter a whole number, e.g. 5.",
            "too_small": "The quantity must be at least 1.",
            "too_large": "That quantity is too large.",
        },
    )


def parse_limit_price(raw) -> int:
    """A price per fraction in the currency's major units ('105.50') -> minor units."""
    if raw is None or not str(raw).strip():
        raise ValidationError("Enter the limit price per fraction, e.g. 105.50.", code="required")
    return parse_major_to_minor(raw, field="limit price")


def new_key() -> str:
    return uuid.uuid4().hex


class _TradeFieldsForm(forms.Form):
    quantity = forms.CharField(
        label="Quantity (fractions)",
        max_length=24,
        error_messages={"required": "Enter how many fractions."},
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "off", "class": QUOTED}),
    )
    limit_price = forms.CharField(
        label="Limit price per fraction",
        max_length=32,
        error_messages={"required": "Enter the limit price per fraction, e.g. 105.50."},
        widget=forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off", "class": QUOTED}),
    )
    # Rendered into the page once; a double click or a retried POST reuses it, so the
    # order is placed (or changed) at most once.
    idempotency_key = forms.CharField(
        widget=forms.HiddenInput,
        max_length=64,
        error_messages={
            "required": EXPIRED_FORM,
            "max_length": EXPIRED_FORM,
            "null_characters_not_allowed": EXPIRED_FORM,
        },
    )

    def clean_quantity(self) -> int:
        return parse_trade_quantity(self.cleaned_data.get("quantity"))

    def clean_limit_price(self) -> int:
        return parse_limit_price(self.cleaned_data.get("limit_price"))


class TradeOrderForm(_TradeFieldsForm):
    """The order form of the trade page. `asset` is the asset traded: the engine checks
    the quantity against its supply."""

    side = forms.CharField(
        max_length=8,
        error_messages={"required": "Choose buy or sell."},
        widget=forms.RadioSelect(choices=Side.choices, attrs={"class": QUOTED}),
    )
    time_in_force = forms.CharField(
        label="Time in force",
        max_length=8,
        error_messages={"required": "Choose how long the order lives."},
        widget=forms.Select(choices=TIF.choices, attrs={"class": QUOTED}),
    )
    expires_at = forms.DateTimeField(
        label="Expires at (UTC, good till date only)",
        required=False,
        input_formats=EXPIRY_FORMATS,
        error_messages={"invalid": "Enter the expiry as a date and time, e.g. 2030-01-31 17:00."},
        widget=forms.DateTimeInput(attrs={"type": "datetime-local", "class": QUOTED}, format="%Y-%m-%dT%H:%M"),
    )
    field_order = ["side", "quantity", "limit_price", "time_in_force", "expires_at", "idempotency_key"]

    def __init__(self, *args, asset, **kwargs):
        super().__init__(*args, **kwargs)
        self.asset = asset

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("time_in_force") != TIF.GTD:
            data["expires_at"] = None  # the field is on screen for every order; only gtd reads it
        typed = {
            "side": data.get("side"),
            "quantity": data.get("quantity"),
            "limit_price_minor": data.get("limit_price"),
            "time_in_force": data.get("time_in_force"),
            "expires_at": data.get("expires_at"),
        }
        for failure in order_input_failures(asset=self.asset, **typed):
            field = ENGINE_FIELDS.get(failure.field)
            if field is not None and field not in self.errors:
                self.add_error(field, ValidationError(failure.message, code=failure.code))
        return data

    def order_terms(self) -> dict[str, Any]:
        """The engine's keyword arguments (after is_valid())."""
        data = self.cleaned_data
        return {
            "side": data["side"],
            "quantity": data["quantity"],
            "limit_price_minor": data["limit_price"],
            "time_in_force": data["time_in_force"],
            "expires_at": data["expires_at"],
        }


class TradeOrderModifyForm(_TradeFieldsForm):
    """A new open quantity and limit price for an open order (the engine decides whether
    it keeps its time priority)."""

    quantity = forms.CharField(
        label="New open quantity",
        max_length=24,
        error_messages={"required": "Enter how many fractions."},
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "off"}),
    )
