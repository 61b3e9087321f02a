import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django_countries.fields import CountryField


class InvestorProfile(models.Model):
    """Compliance state of a person that belongs to no single KYC application: a freeze
    by staff. (The custodial account lives in chain.ChainAccount.)"""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="investor_profile")
    frozen = models.BooleanField(default=False, help_text="A frozen account can neither buy nor sell.")
    frozen_reason = models.TextField(blank=True)
    frozen_at = models.DateTimeField(null=True, blank=True)
    frozen_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        permissions = [("freeze_investorprofile", "Can freeze or unfreeze an investor account")]

    def __str__(self):
        return f"Investor profile of {self.user}"


class TaxProfile(models.Model):
    """Where an investor pays tax, for withholding on income distributions. Compliance sets
    the rate; without a rate set, the default of `compliance.withholding` applies (the
    country of tax residence, and whether a treaty form is on file)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="tax_profile")
    tax_residence = CountryField(blank=True, help_text="Country of tax residence (ISO 3166).")
    treaty_form_on_file = models.BooleanField(
        default=False, help_text="A treaty form (e.g. W-8BEN) is on file: the treaty rate applies."
    )
    withholding_rate_bps = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Set by compliance, in basis points (1500 = 15 %). Empty: the default for the country.",
    )
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(withholding_rate_bps__isnull=True) | Q(withholding_rate_bps__lte=10_000),
                name="tax_profile_rate_at_most_100_pct",
            )
        ]

    def __str__(self):
        return f"Tax profile of {self.user}"


class KycApplication(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        SUBMITTED = "submitted", "Submitted"
        NEEDS_INFO = "needs_info", "Needs more information"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"

    class Category(models.TextChoices):
        RETAIL = "retail", "Retail investor"
        ACCREDITED = "accredited", "Accredited investor"
        PROFESSIONAL = "professional", "Professional investor"

    class Screening(models.TextChoices):
        NOT_SCREENED = "not_screened", "Not screened"
        CLEAR = "clear", "Clear"
        HIT = "hit", "Possible match: manual review"
        CLEARED = "cleared", "Match dismissed by two reviewers"

    EDITABLE_STATUSES = (Status.DRAFT, Status.NEEDS_INFO)
    OPEN_STATUSES = (Status.DRAFT, Status.SUBMITTED, Status.NEEDS_INFO)
    # What the applicant fills in (the form's fields; what a renewal copies, except the
    # self-certification, which is given again each time).
    APPLICANT_FIELDS = (
        "legal_name",
        "date_of_birth",
        "nationality",
        "country_of_residence",
        "address",
        "investor_category",
        "self_certified",
    )
    RENEWAL_COPIED_FIELDS = tuple(f for f in APPLICANT_FIELDS if f != "self_certified")
    QUALIFIED_CATEGORIES = (Category.ACCREDITED, Category.PROFESSIONAL)

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="kyc_applications")

    legal_name = models.CharField(max_length=200, blank=True)
    date_of_birth = models.DateField(null=True, blank=True)
    nationality = CountryField(blank=True)
    country_of_residence = CountryField(blank=True)
    address = models.TextField(blank=True)
    investor_category = models.CharField(max_length=16, choices=Category.choices, default=Category.RETAIL)
    self_certified = models.BooleanField(
        default=False, help_text="The applicant certified that the category and the details are true."
    )

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT, db_index=True)
    submitted_at = models.DateTimeField(null=True, blank=True)

    screening_status = models.CharField(
        max_length=16, choices=Screening.choices, default=Screening.NOT_SCREENED, db_index=True
    )
    screening_score = models.FloatField(null=True, blank=True)
    # Snapshot of the best matching list entries (the list itself is replaced on import).
    screening_matches = models.JSONField(default=list, blank=True)
    screened_at = models.DateTimeField(null=True, blank=True)

    # Four eyes: a flagged application needs two approvals by different staff members.
    first_approval_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    first_approval_at = models.DateTimeField(null=True, blank=True)
    first_approval_reason = models.TextField(blank=True)

    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_reason = models.TextField(blank=True)
    expires_at = models.DateField(null=True, blank=True, help_text="Approval is valid up to and including this day.")
    expiry_reminder_days = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        editable=False,
        help_text="The last renewal reminder sent: days before expiry (30, 7) or 0 for the expiry notice.",
    )

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = "KYC application"
        permissions = [("review_kycapplication", "Can approve, reject or ask for more information on KYC")]
        constraints = [
            models.CheckConstraint(
                condition=~Q(status="approved") | Q(expires_at__isnull=False),
                name="kyc_approved_has_expiry",
            ),
        ]
        indexes = [models.Index(fields=["user", "-created_at"])]

    def __str__(self):
        return f"KYC {self.legal_name or self.user} ({self.get_status_display()})"

    @property
    def is_editable(self) -> bool:
        return self.status in self.EDITABLE_STATUSES

    @property
    def is_flagged(self) -> bool:
        return self.screening_status == self.Screening.HIT

    def is_expired(self, today=None) -> bool:
        today = today or timezone.localdate()
        return self.status == self.Status.APPROVED and self.expires_at is not None and self.expires_at < today


def kyc_document_upload_to(instance, filename):
    # Random name on disk; the sanitised original name is kept in the row.
    return f"kyc/{instance.application.public_id}/{uuid.uuid4().hex}"


class KycDocument(models.Model):
    class Kind(models.TextChoices):
        IDENTITY = "identity", "Identity document"
        PROOF_OF_ADDRESS = "proof_of_address", "Proof of address"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    application = models.ForeignKey(KycApplication, on_delete=models.CASCADE, related_name="documents")
    kind = models.CharField(max_length=32, choices=Kind.choices)
    file = models.FileField(upload_to=kyc_document_upload_to, max_length=300)
    original_name = models.CharField(max_length=120)
    content_type = models.CharField(max_length=40)
    size = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    uploaded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["kind", "uploaded_at"]
        constraints = [models.UniqueConstraint(fields=["application", "kind"], name="kyc_document_one_per_kind")]

    def __str__(self):
        return f"{self.get_kind_display()}: {self.original_name}"


class SanctionsEntry(models.Model):
    """One name on a sanctions list (primary name or alias). The whole list is replaced on
    each import; screening results keep a snapshot of what matched."""

    source = models.CharField(max_length=32, default="OFAC SDN")
    ent_num = models.BigIntegerField(help_text="The list's own entry number.")
    name = models.CharField(max_length=400)
    normalized_name = models.CharField(max_length=400)
    is_alias = models.BooleanField(default=False)
    sdn_type = models.CharField(max_length=40, blank=True)
    program = models.CharField(max_length=200, blank=True)
    remarks = models.TextField(blank=True)
    imported_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["source", "ent_num", "is_alias", "name"]
        verbose_name_plural = "sanctions entries"
        indexes = [models.Index(fields=["source", "ent_num"])]

    def __str__(self):
        return f"{self.name} ({self.source} #{self.ent_num})"


class AuditHead(models.Model):
    """A single row: the end of the audit chain. Writers lock it, so two concurrent
    transactions can never both append after the same entry."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    last_seq = models.BigIntegerField(default=0)
    last_hash = models.CharField(max_length=64, default="0" * 64)

    def __str__(self):
        return f"Audit chain head at #{self.last_seq}"


class AuditEntry(models.Model):
    """Append-only: PostgreSQL rejects UPDATE and DELETE on this table (see migration
    0002). Each row carries the SHA-256 of its own content and of the previous row."""

    seq = models.BigIntegerField(unique=True)
    created_at = models.DateTimeField()
    # No database foreign key: the row must outlive (and never be rewritten by) a user's deletion.
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    actor_label = models.CharField(max_length=254, blank=True)
    action = models.CharField(max_length=64, db_index=True)
    target_type = models.CharField(max_length=100, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    target_repr = models.CharField(max_length=300, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    reason = models.TextField(blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ["-seq"]
        verbose_name_plural = "audit entries"
        indexes = [models.Index(fields=["target_type", "target_id"])]

    def __str__(self):
        return f"#{self.seq} {self.action} {self.target_repr}".strip()
