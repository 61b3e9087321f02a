from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone

from config.money import CURRENCY_CHOICES, currency_clean, minor_to_major_text, parse_major_to_minor
from config.numbers import WholeNumberField, parse_whole_number
from config.uploads import validate_upload

from .models import MAX_FRACTIONS, UINT64_MAX, Asset, AssetDocument

MONEY_HELP = "In {currency}, e.g. 1250.00"


def _byte_length_validator(limit: int, label: str):
    def validate(value: str):
        size = len(value.encode("utf-8"))
        if size > limit:
            raise ValidationError(f"The {label} is {size} bytes; Algorand allows at most {limit} bytes.")

    return validate


class AssetForm(forms.ModelForm):
    """The issuer's description of an asset. Money is typed in major units and stored
    in minor units."""

    valuation = forms.CharField(label="Valuation", help_text="In the asset's currency, e.g. 2500000.00")
    price_per_fraction = forms.CharField(label="Price per fraction", help_text="In the asset's currency, e.g. 100.00")
    total_fractions = forms.CharField(label="Number of fractions", help_text="Total supply of the token; whole units.")
    fractions_for_sale = forms.CharField(
        label="Fractions offered", help_text="How many of them the primary offering sells."
    )
    unit_name = forms.CharField(
        label="Unit name (ticker)",
        max_length=64,
        help_text="At most 8 bytes, e.g. BLDG42.",
        validators=[_byte_length_validator(8, "unit name")],
    )
    currency = forms.ChoiceField(
        label="Currency",
        choices=CURRENCY_CHOICES,
        initial="USD",
        help_text="The currency investors pay in and the asset is valued in.",
    )
    asset_name = forms.CharField(
        label="Token name",
        max_length=128,
        help_text="At most 32 bytes.",
        validators=[_byte_length_validator(32, "token name")],
    )

    class Meta:
        model = Asset
        fields = [
            "name",
            "category",
            "description",
            "location",
            "country",
            "valuation_date",
            "currency",
            "unit_name",
            "asset_name",
            "min_purchase",
            "max_purchase",
            "offering_opens_at",
            "offering_closes_at",
        ]
        widgets = {
            "description": forms.Textarea(attrs={"rows": 5}),
            "valuation_date": forms.DateInput(attrs={"type": "date"}),
            "offering_opens_at": forms.DateTimeInput(attrs={"type": "datetime-local"}),
            "offering_closes_at": forms.DateTimeInput(attrs={"type": "datetime-local"}),
        }
        labels = {"min_purchase": "Minimum per purchase", "max_purchase": "Maximum per purchase"}
        field_classes = {"min_purchase": WholeNumberField, "max_purchase": WholeNumberField}

    field_order = [
        "name",
        "category",
        "description",
        "location",
        "country",
        "valuation",
        "valuation_date",
        "currency",
        "total_fractions",
        "unit_name",
        "asset_name",
        "price_per_fraction",
        "fractions_for_sale",
        "min_purchase",
        "max_purchase",
        "offering_opens_at",
        "offering_closes_at",
    ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        asset = self.instance
        if asset.pk:
            self.initial.setdefault("valuation", minor_to_major_text(asset.valuation_minor))
            self.initial.setdefault("price_per_fraction", minor_to_major_text(asset.price_per_fraction_minor))
            self.initial.setdefault("total_fractions", asset.total_fractions)
            self.initial.setdefault("fractions_for_sale", asset.fractions_for_sale)

    def clean_currency(self):
        return currency_clean(self.cleaned_data["currency"])

    def clean_valuation(self):
        return parse_major_to_minor(self.cleaned_data["valuation"], field="valuation")

    def clean_price_per_fraction(self):
        return parse_major_to_minor(self.cleaned_data["price_per_fraction"], field="price per fraction")

    @staticmethod
    def _whole_units(raw: str, label: str) -> int:
        value = parse_whole_number(
            raw,
            label=label,
            maximum=UINT64_MAX,
            messages={"too_large": f"The {label} is more than an Algorand asset can hold (2^64 − 1)."},
        )
        if value > MAX_FRACTIONS:
            raise ValidationError(f"The {label} is above the platform's limit of {MAX_FRACTIONS:,}.")
        return value

    def clean_total_fractions(self):
        return self._whole_units(self.cleaned_data["total_fractions"], "number of fractions")

    def clean_fractions_for_sale(self):
        return self._whole_units(self.cleaned_data["fractions_for_sale"], "number of fractions offered")

    def clean(self):
        data = super().clean()
        total, for_sale = data.get("total_fractions"), data.get("fractions_for_sale")
        if total and for_sale and for_sale > total:
            self.add_error("fractions_for_sale", "You cannot offer more fractions than exist.")
        lo, hi = data.get("min_purchase"), data.get("max_purchase")
        if lo and hi and hi < lo:
            self.add_error("max_purchase", "The maximum per purchase is below the minimum.")
        opens, closes = data.get("offering_opens_at"), data.get("offering_closes_at")
        if opens and closes and closes <= opens:
            self.add_error("offering_closes_at", "The offering must close after it opens.")
        elif closes and closes <= timezone.now():
            self.add_error("offering_closes_at", "The closing date is in the past; choose a date in the future.")
        return data

    def asset_fields(self) -> dict:
        data = dict(self.cleaned_data)
        data["valuation_minor"] = data.pop("valuation")
        data["price_per_fraction_minor"] = data.pop("price_per_fraction")
        return data


class DocumentUploadForm(forms.Form):
    kind = forms.ChoiceField(choices=AssetDocument.Kind.choices)
    title = forms.CharField(max_length=200, help_text="What the document is, e.g. 'Appraisal by Knight & Co, 2026'.")
    file = forms.FileField(help_text="PDF, PNG, JPEG or WebP, up to 10 MB.")
    public_to_investors = forms.BooleanField(required=False, label="Verified investors may read this document")

    def clean(self):
        data = super().clean()
        upload = data.get("file")
        if upload is not None:
            try:
                data["validated"] = validate_upload(upload)
            except ValidationError as exc:
                self.add_error("file", exc)
        return data


class ReviewDecisionForm(forms.Form):
    comment = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False, label="Comment to the issuer")
