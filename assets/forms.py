from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.template.defaultfilters import filesizeformat
from django.utils import timezone
from PIL import Image, UnidentifiedImageError

from config.money import CURRENCY_CHOICES, currency_clean, minor_to_major_text, parse_major_to_minor
from config.numbers import WholeNumberField, parse_whole_number
from config.uploads import validate_upload

from .models import IMAGE_FORMATS, MAX_FRACTIONS, UINT64_MAX, Asset, AssetDocument, AssetImage

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


# Pillow tries only these decoders, whatever the file says it is: never its other
# plugins (EPS would start Ghostscript, and every extra decoder is more attack surface).
GALLERY_FORMATS = ("JPEG", "PNG", "WEBP")


def _pixel_limit_error(max_pixels: int, size: tuple[int, int] | None = None) -> ValidationError:
    declared = f"This image is {size[0]:,} × {size[1]:,} pixels" if size else "This image declares too many pixels"
    return ValidationError(
        f"{declared}; we accept at most {max_pixels:,} pixels in all. Export it smaller and upload that.",
        code="too_many_pixels",
    )


def image_decode(upload, *, max_bytes: int, max_pixels: int) -> Image.Image:
    """The upload decoded into pixels, judged by its content alone (the name and the
    browser's content type are ignored): JPEG, PNG or WebP, at most `max_bytes`, at most
    `max_pixels` read from the header before anything is decoded (a decompression bomb
    is a form error, never a 500). Checked twice as Pillow recommends: verify() reads the
    structure (PNG checksums), then a fresh open decodes the pixels. A large JPEG is
    decoded at a reduced scale when it would be shrunk anyway (AssetImage.MAX_SIDE)."""
    size = upload.size
    if not size:
        raise ValidationError("The file is empty (0 bytes).", code="empty")
    if size > max_bytes:
        raise ValidationError(
            f"The file is {filesizeformat(size)}; the limit is {filesizeformat(max_bytes)}.", code="too_large"
        )
    try:
        # Pillow itself warns above its MAX_IMAGE_PIXELS (89 M) and refuses at twice that,
        # both while opening; our own limit is checked right after, before any decoding.
        upload.seek(0)
        with Image.open(upload, formats=GALLERY_FORMATS) as probe:
            if probe.width * probe.height > max_pixels:
                raise _pixel_limit_error(max_pixels, probe.size)
            probe.verify()
        upload.seek(0)
        picture = Image.open(upload, formats=GALLERY_FORMATS)
        if picture.width * picture.height > max_pixels:
            raise _pixel_limit_error(max_pixels, picture.size)
        if picture.format in ("JPEG", "MPO"):
            scale = AssetImage.MAX_SIDE / max(picture.size)
            picture.draft("RGB", (int(picture.width * scale) or 1, int(picture.height * scale) or 1))
        picture.load()
    except ValidationError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _pixel_limit_error(max_pixels) from None
    except UnidentifiedImageError:
        raise ValidationError(
            "This file is not a JPEG, PNG or WebP image, whatever its name says.", code="bad_type"
        ) from None
    except Exception:  # Pillow reports a damaged file with many types (OSError, SyntaxError, struct.error, ...)
        raise ValidationError(
            "This image is damaged or incomplete; we could not read it. Export it again and upload that.",
            code="bad_image",
        ) from None
    finally:
        upload.seek(0)
    if picture.format not in IMAGE_FORMATS:
        raise ValidationError("This file is not a JPEG, PNG or WebP image, whatever its name says.", code="bad_type")
    return picture


class AssetImageUploadForm(forms.Form):
    """A photo for the asset's public gallery. `image` cleans to the decoded picture;
    assets.services.asset_image_add re-encodes it without metadata and makes the thumbnail."""

    image = forms.FileField(
        label="Photo", widget=forms.FileInput(attrs={"accept": ", ".join(sorted(set(IMAGE_FORMATS.values())))})
    )
    caption = forms.CharField(
        label="Caption",
        max_length=200,
        required=False,
        help_text="Optional. What the photo shows; people who cannot see it hear this.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["image"].help_text = (
            f"JPEG, PNG or WebP, up to {filesizeformat(settings.ASSET_IMAGE_MAX_BYTES)}. "
            "Public on the asset's page; location and camera data are removed."
        )

    def clean_image(self) -> Image.Image:
        return image_decode(
            self.cleaned_data["image"],
            max_bytes=settings.ASSET_IMAGE_MAX_BYTES,
            max_pixels=settings.ASSET_IMAGE_MAX_PIXELS,
        )


class ReviewDecisionForm(forms.Form):
    comment = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False, label="Comment to the issuer")
