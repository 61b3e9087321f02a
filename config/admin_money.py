"""Money in the back office: shown and typed in the currency's units, stored in minor units.

Every amount column is an integer of minor units named `*_minor` (and a ledger account's
`balance`). MoneyAdminMixin, which config.backoffice's ReadOnlyAdmin and ServiceFormAdmin
include, makes Django admin show such a field as "2,400,000.00 EUR" under the label
"Valuation" (not "Valuation minor: 240000000"), in list columns, read-only fields and
view-only pages alike, and gives an editable one a form field that shows and takes major
units and converts exactly with config.money (no float anywhere)."""

from collections.abc import Callable, Sequence
from typing import Any

from django import forms
from django.core.exceptions import FieldDoesNotExist
from django.db import models
from django.http import HttpRequest
from django.utils.text import capfirst

from config.money import format_money, minor_to_major_text, parse_major_to_minor

MINOR_SUFFIX = "_minor"
# Where the currency of a row is: its own field, or that of the row it belongs to.
CURRENCY_PATHS = ("currency", "account.currency", "offering.currency", "market.currency", "asset.currency")


def currency_of(obj: Any) -> str:
    for path in CURRENCY_PATHS:
        value = obj
        for part in path.split("."):
            value = getattr(value, part, None)
            if value is None:
                break
        if isinstance(value, str) and value:
            return value
    return ""


def money_label(field: models.Field) -> str:
    """'valuation minor' -> 'Valuation'."""
    name = str(field.verbose_name)
    if name.endswith(" minor"):
        name = name[: -len(" minor")]
    return capfirst(name)


class MajorUnitsField(forms.CharField):
    """An amount typed in the currency's units ('2400000.00'), cleaned to integer minor
    units (240000000) by config.money; its initial value (minor units) is shown in major
    units."""

    def __init__(self, *, field_label: str = "amount", **kwargs: Any) -> None:
        self.field_label = field_label
        kwargs.setdefault("help_text", "In the currency's units, e.g. 1250.00")
        super().__init__(**kwargs)

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            return minor_to_major_text(value)
        return value

    def to_python(self, value: Any) -> int | None:  # type: ignore[override]
        text = super().to_python(value)
        if text in self.empty_values:
            return None
        return parse_major_to_minor(text, field=self.field_label)


def _display(name: str, label: str) -> Callable[[Any], str]:
    def show(obj: Any) -> str:
        value = getattr(obj, name, None)
        return format_money(value, currency_of(obj)) if value is not None else "—"

    show.short_description = label  # type: ignore[attr-defined]
    show.admin_order_field = name  # type: ignore[attr-defined]
    return show


class MoneyAdminMixin:
    """For ModelAdmin and InlineModelAdmin: money fields in major units (module doc)."""

    model: type[models.Model]
    # Amount fields whose name does not end in _minor (e.g. a ledger account's balance).
    money_extra_fields: Sequence[str] = ()

    def _money_field(self, name: Any) -> models.Field | None:
        if not isinstance(name, str) or not (name.endswith(MINOR_SUFFIX) or name in self.money_extra_fields):
            return None
        try:
            field = self.model._meta.get_field(name)
        except FieldDoesNotExist:
            return None
        return field if isinstance(field, models.IntegerField) else None

    def _money_alias(self, name: Any) -> Any:
        field = self._money_field(name)
        if field is None:
            return name
        alias = f"{name}_in_units"
        if not hasattr(self, alias):
            setattr(self, alias, _display(name, money_label(field)))
        return alias

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[Any]:
        return [self._money_alias(n) for n in super().get_readonly_fields(request, obj)]  # type: ignore[misc]

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        fieldsets = super().get_fieldsets(request, obj)  # type: ignore[misc]
        view_only = obj is not None and not self.has_change_permission(request, obj)  # type: ignore[attr-defined]
        readonly = set(super().get_readonly_fields(request, obj))  # type: ignore[misc]

        def swap(name: Any) -> Any:
            if isinstance(name, list | tuple):
                return type(name)(swap(n) for n in name)
            return self._money_alias(name) if view_only or name in readonly else name

        return [(title, {**opts, "fields": [swap(n) for n in opts["fields"]]}) for title, opts in fieldsets]

    def get_list_display(self, request: HttpRequest) -> list[Any]:
        return [self._money_alias(n) for n in super().get_list_display(request)]  # type: ignore[misc]

    def formfield_for_dbfield(self, db_field: models.Field, request: HttpRequest, **kwargs: Any) -> Any:
        if self._money_field(db_field.name) is not None and db_field.editable:
            label = money_label(db_field)
            return MajorUnitsField(
                label=label,
                field_label=label.lower(),
                required=not db_field.blank,
                help_text="In the currency's units, e.g. 1250.00",
            )
        return super().formfield_for_dbfield(db_field, request, **kwargs)  # type: ignore[misc]
