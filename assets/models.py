import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django_countries import countries
from django_countries.fields import CountryField

from config.money import CURRENCY_CHOICES

# Algorand amounts are uint64; PostgreSQL's bigint stops at 2**63 - 1, so that is our cap.
UINT64_MAX = 2**64 - 1
MAX_FRACTIONS = 2**63 - 1


def validate_country_codes(value) -> None:
    """A list of ISO 3166-1 alpha-2 codes (the transfer restrictions' allow-list)."""
    if not isinstance(value, list | tuple):
        raise ValidationError('Give a list of ISO country codes, e.g. ["NL", "DE"].')
    unknown = [str(code) for code in value if not isinstance(code, str) or code.upper() not in countries]
    if unknown:
        raise ValidationError("Not ISO 3166-1 country codes: %(codes)s.", params={"codes": ", ".join(unknown)})


class Asset(models.Model):
    class Category(models.TextChoices):
        REAL_ESTATE = "real_estate", "Real estate"
        COMMODITY = "commodity", "Commodity"
        ART = "art", "Art"
        PRIVATE_EQUITY = "private_equity", "Private equity"
        DEBT = "debt", "Debt"
        OTHER = "other", "Other"

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        SUBMITTED = "submitted", "Submitted for review"
        CHANGES_REQUESTED = "changes_requested", "Changes requested"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"
        MINTING = "minting", "Minting"
        LIVE = "live", "Live"
        FAILED = "failed", "Minting failed"

    EDITABLE_STATUSES = (Status.DRAFT, Status.CHANGES_REQUESTED)

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    issuer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="issued_assets")
    name = models.CharField(max_length=200)
    category = models.CharField(max_length=32, choices=Category.choices)
    description = models.TextField()
    location = models.CharField(max_length=200, help_text="City and country, or where the asset is kept.")
    country = CountryField(blank=True, help_text="The country where the asset is (ISO 3166-1).")
    valuation_minor = models.BigIntegerField(
        validators=[MinValueValidator(1)], help_text="Valuation in minor units (cents)."
    )
    valuation_date = models.DateField()
    currency = models.CharField(max_length=3, default="USD", choices=CURRENCY_CHOICES)
    total_fractions = models.BigIntegerField(validators=[MinValueValidator(1), MaxValueValidator(MAX_FRACTIONS)])
    unit_name = models.CharField(max_length=8, help_text="Ticker on chain, at most 8 bytes.")
    asset_name = models.CharField(max_length=32, help_text="Name on chain, at most 32 bytes.")
    price_per_fraction_minor = models.BigIntegerField(validators=[MinValueValidator(1)])

    # Offering terms proposed by the issuer; the marketplace opens its offering from them.
    fractions_for_sale = models.BigIntegerField(validators=[MinValueValidator(1)])
    min_purchase = models.BigIntegerField(default=1, validators=[MinValueValidator(1)])
    max_purchase = models.BigIntegerField(null=True, blank=True, validators=[MinValueValidator(1)])
    offering_opens_at = models.DateTimeField(null=True, blank=True)
    offering_closes_at = models.DateTimeField(null=True, blank=True)

    # Transfer restrictions, edited by staff; the eligibility engine reads them.
    allowed_countries = models.JSONField(
        default=list,
        blank=True,
        validators=[validate_country_codes],
        help_text="ISO 3166-1 codes of investor residence allowed; empty means any not blocked.",
    )
    accreditation_required = models.BooleanField(default=False)
    min_holding = models.BigIntegerField(default=0, validators=[MinValueValidator(0)])
    max_holding = models.BigIntegerField(null=True, blank=True, validators=[MinValueValidator(1)])
    max_holders = models.PositiveIntegerField(null=True, blank=True)
    lockup_days = models.PositiveIntegerField(default=0)

    status = models.CharField(max_length=32, choices=Status.choices, default=Status.DRAFT, db_index=True)
    review_comment = models.TextField(blank=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    failure_reason = models.TextField(blank=True)

    # Frozen at approval: the exact ARC-3 JSON bytes whose SHA-256 goes on chain.
    metadata_json = models.TextField(blank=True)
    metadata_hash = models.CharField(max_length=64, blank=True)
    asa_id = models.BigIntegerField(null=True, blank=True, unique=True)
    creation_txid = models.CharField(max_length=64, blank=True)
    creation_round = models.BigIntegerField(null=True, blank=True)
    live_at = models.DateTimeField(null=True, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        permissions = [("review_asset", "Can approve, reject or request changes to an issuance")]
        constraints = [
            models.CheckConstraint(condition=Q(total_fractions__gte=1), name="asset_total_fractions_positive"),
            models.CheckConstraint(
                condition=Q(fractions_for_sale__lte=models.F("total_fractions")), name="asset_for_sale_within_total"
            ),
            models.CheckConstraint(condition=Q(price_per_fraction_minor__gte=1), name="asset_price_positive"),
        ]
        indexes = [
            models.Index(fields=["status", "category"]),
            # The catalogue's sort orders over live assets (assets/selectors.py CATALOGUE_SORTS):
            # a page is the first rows of one of these, whatever the number of assets
            # (bench/scaling). "% funded" is the offering's figure and sorts in memory.
            models.Index(
                models.F("live_at").desc(), models.F("id").desc(), name="asset_live_newest", condition=Q(status="live")
            ),
            models.Index(
                "price_per_fraction_minor",
                models.F("live_at").desc(),
                models.F("id").desc(),
                name="asset_live_price_asc",
                condition=Q(status="live"),
            ),
            models.Index(
                models.F("price_per_fraction_minor").desc(),
                models.F("live_at").desc(),
                models.F("id").desc(),
                name="asset_live_price_desc",
                condition=Q(status="live"),
            ),
        ]

    def __str__(self):
        return self.name

    @property
    def is_editable(self) -> bool:
        return self.status in self.EDITABLE_STATUSES


def document_upload_to(instance, filename):
    # Random name on disk; the sanitised original name is kept in the row.
    return f"assets/{instance.asset.public_id}/{uuid.uuid4().hex}"


class AssetDocument(models.Model):
    class Kind(models.TextChoices):
        TITLE_DEED = "title_deed", "Title deed"
        APPRAISAL = "appraisal", "Appraisal"
        PROSPECTUS = "prospectus", "Prospectus"
        FINANCIAL_STATEMENT = "financial_statement", "Financial statement"
        PHOTO = "photo", "Photo"
        OTHER = "other", "Other"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    asset = models.ForeignKey(Asset, on_delete=models.CASCADE, related_name="documents")
    kind = models.CharField(max_length=32, choices=Kind.choices)
    title = models.CharField(max_length=200)
    file = models.FileField(upload_to=document_upload_to, max_length=300)
    original_name = models.CharField(max_length=120)
    content_type = models.CharField(max_length=40)
    size = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    public_to_investors = models.BooleanField(default=False, help_text="Verified investors may read it.")
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    uploaded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["kind", "uploaded_at"]
        constraints = [models.UniqueConstraint(fields=["asset", "sha256"], name="asset_document_unique_content")]

    def __str__(self):
        return f"{self.get_kind_display()}: {self.title}"

    @property
    def is_image(self) -> bool:
        return self.content_type.startswith("image/")


IMAGE_EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp"}
# Pillow's format names of the photos we accept (a camera's multi-picture JPEG opens as MPO).
IMAGE_FORMATS = {"JPEG": "image/jpeg", "MPO": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}


def image_upload_to(instance, filename):
    # Our own name, never the uploader's: the image's public id and the stored type.
    return f"asset-images/{instance.asset.public_id}/{instance.public_id.hex}.{IMAGE_EXTENSIONS[instance.content_type]}"


def thumbnail_upload_to(instance, filename):
    return f"asset-images/{instance.asset.public_id}/{instance.public_id.hex}-thumb.webp"


class AssetImage(models.Model):
    """A photo of the asset in its public gallery: re-encoded by us without metadata
    (assets/services.py asset_image_add), with a server-side thumbnail. Public whenever
    the asset's page is (the image view applies the page's rule)."""

    THUMBNAIL_CONTENT_TYPE = "image/webp"
    MAX_SIDE = 2560  # a larger photo is stored shrunk to this many pixels on its long side
    THUMBNAIL_BOX = (400, 800)  # thumbnails are 400 px wide (narrower only if the photo is)

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    asset = models.ForeignKey(Asset, on_delete=models.CASCADE, related_name="images")
    image = models.FileField(upload_to=image_upload_to, max_length=200)
    content_type = models.CharField(max_length=20, choices=[(t, t) for t in IMAGE_EXTENSIONS])
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    size = models.PositiveIntegerField(help_text="Bytes of the stored image.")
    thumbnail = models.FileField(upload_to=thumbnail_upload_to, max_length=200)
    thumbnail_width = models.PositiveIntegerField()
    thumbnail_height = models.PositiveIntegerField()
    caption = models.CharField(max_length=200, blank=True, help_text="Also the image's alternative text.")
    position = models.PositiveIntegerField(default=0)
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["position", "pk"]
        indexes = [models.Index(fields=["asset", "position"])]

    def __str__(self):
        return self.caption or f"Photo {self.position} of {self.asset}"
