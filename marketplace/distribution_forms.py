"""Forms of income distributions: the issuer's declaration page, the back office's
declaration, funding and cancellation. Amounts are typed in the currency's units and
parsed by config.money; every rule is the engine's (`distributions.declaration_failures`,
run from `clean` so that all refusals show at once, and again by the service)."""

from __future__ import annotations

import datetime
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from assets.models import Asset
from config.backoffice import form_errors_from
from config.money import parse_major_to_minor

from . import distributions
from .models import Distribution, Offering

# The engine names the amount by its column; the forms take it in the currency's units.
FORM_FIELD_OF = {"gross_minor": "gross", "amount_minor": "amount"}
DATE = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
DATE_TIME = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")


def declaration_currency(asset: Asset) -> str:
    """Distributions are paid in the offering's currency (the asset's before it has one)."""
    offering = Offering.objects.filter(asset_id=asset.pk).values_list("currency", flat=True).first()
    return offering or asset.currency


def service_errors(exc: ValidationError) -> ValidationError:
    """A service's ValidationError with the forms' field names."""
    if hasattr(exc, "error_dict"):
        return ValidationError({FORM_FIELD_OF.get(name, name): errors for name, errors in exc.message_dict.items()})
    return exc


def service_errors_onto(form: forms.BaseForm, exc: ValidationError) -> None:
    """A service's ValidationError onto the form, per field where the form has it."""
    form_errors_from(form, service_errors(exc))


class DistributionDeclareForm(forms.Form):
    """What the issuer (or staff) declares; the currency is the offering's, not typed."""

    kind = forms.ChoiceField(choices=Distribution.Kind.choices, initial=Distribution.Kind.RENT)
    gross = forms.CharField(
        label="Gross amount", max_length=32, help_text="The whole amount paid to all holders, e.g. 12,500.00"
    )
    period_start = forms.DateField(label="Period from", widget=DATE)
    period_end = forms.DateField(label="Period to", widget=DATE, help_text="The period the income was earned in.")
    record_at = forms.DateTimeField(
        label="Record date and time (UTC)",
        widget=DATE_TIME,
        help_text="Whoever holds fractions at this moment is paid.",
    )
    payment_date = forms.DateField(label="Payment date", widget=DATE, help_text="On or after the record date.")
    note = forms.CharField(
        label="Note for investors",
        max_length=distributions.NOTE_MAX,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
    )

    def __init__(self, *args: Any, asset: Asset | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fixed_asset = asset

    def clean_gross(self) -> int:
        return parse_major_to_minor(self.cleaned_data["gross"], field="gross amount")

    def declaring_asset(self) -> Asset | None:
        return self.fixed_asset

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        asset = self.declaring_asset()
        if asset is None:
            return data
        # The engine's rules on what is valid so far; a field already refused keeps its message.
        failures = distributions.declaration_failures(
            asset=asset,
            kind=data.get("kind"),
            gross_minor=data.get("gross", 1),
            currency=declaration_currency(asset),
            period_start=data.get("period_start"),
            period_end=data.get("period_end"),
            record_at=data.get("record_at"),
            payment_date=data.get("payment_date"),
            note=data.get("note", ""),
        )
        for name, messages in failures.items():
            field = FORM_FIELD_OF.get(name, name)
            if field == "__all__":
                self.add_error(None, messages)
            elif field in self.fields and field not in self.errors:
                self.add_error(field, messages)
        return data

    def service_kwargs(self) -> dict[str, Any]:
        data = self.cleaned_data
        asset = self.declaring_asset()
        assert asset is not None, "a valid form has its asset"
        return {
            "asset": asset,
            "kind": data["kind"],
            "gross_minor": data["gross"],
            "currency": declaration_currency(asset),
            "period_start": data["period_start"],
            "period_end": data["period_end"],
            "record_at": data["record_at"],
            "payment_date": data["payment_date"],
            "note": data["note"],
        }


class DistributionDeclareAdminForm(DistributionDeclareForm):
    """The back office declares for any live asset, with the same rules."""

    asset = forms.ModelChoiceField(queryset=Asset.objects.filter(status=Asset.Status.LIVE).order_by("name"))
    document = forms.UUIDField(
        required=False,
        label="Supporting document (optional)",
        help_text="The id of a document in the asset's data room, e.g. the rent statement.",
    )

    field_order = ["asset", "kind", "gross", "period_start", "period_end", "record_at", "payment_date", "note"]

    def declaring_asset(self) -> Asset | None:
        return self.cleaned_data.get("asset")

    def service_kwargs(self) -> dict[str, Any]:
        kwargs = super().service_kwargs()
        public_id = self.cleaned_data.get("document")
        if public_id:
            document = kwargs["asset"].documents.filter(public_id=public_id).first()
            if document is None:
                raise ValidationError({"document": ["No document with this id in the asset's data room."]})
            kwargs["document"] = document
        return kwargs


class DistributionCancelForm(forms.Form):
    reason = forms.CharField(
        label="Reason",
        max_length=distributions.NOTE_MAX,
        error_messages={"required": "Give a reason for the cancellation."},
        widget=forms.TextInput(attrs={"placeholder": "Why it is cancelled"}),
    )


class DistributionFundForm(forms.Form):
    SOURCES = [
        (distributions.FUND_BY_DEPOSIT, "A deposit received for it (give the bank reference)"),
        (distributions.FUND_FROM_PROCEEDS, "The issuer's proceeds account"),
    ]

    amount = forms.CharField(label="Amount", max_length=32, help_text="In the distribution's currency, e.g. 1,250.00")
    source = forms.ChoiceField(choices=SOURCES, widget=forms.RadioSelect, initial=distributions.FUND_BY_DEPOSIT)
    bank_reference = forms.CharField(label="Bank reference of the deposit", max_length=100, required=False)

    def clean_amount(self) -> int:
        return parse_major_to_minor(self.cleaned_data["amount"], field="amount")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("source") == distributions.FUND_BY_DEPOSIT and not (data.get("bank_reference") or "").strip():
            self.add_error("bank_reference", "Give the bank reference of the deposit.")
        return data


def initial_declaration(today: datetime.date) -> dict[str, Any]:
    """The last full month, paid in a week, holders recorded the day before."""
    first_of_month = today.replace(day=1)
    period_end = first_of_month - datetime.timedelta(days=1)
    return {
        "kind": Distribution.Kind.RENT,
        "period_start": period_end.replace(day=1),
        "period_end": period_end,
        "payment_date": today + datetime.timedelta(days=7),
    }
