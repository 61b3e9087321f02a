"""Primary market: offerings, the double-entry cash ledger, primary orders, holdings.

Money is always an integer number of minor units (cents) plus an ISO currency code.
The ledger is the book of record for cash: balances on `LedgerAccount` are a cache of
the sum of their postings, kept in the same transaction by `ledger.ledger_post` (the one
writer) and proven equal by `manage.py ledger_check`."""

import uuid

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from config.money import CURRENCY_CHOICES


class Holding(models.Model):
    """How many fractions of an asset an investor owns according to our books.
    `quantity` counts settled units only: it must equal the investor's on-chain balance
    (chain reconciliation checks exactly that). `pending_quantity` counts units bought
    and paid for whose settlement has not confirmed yet (they count toward holding
    limits and the holder count, never toward what can be sold)."""

    investor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="holdings")
    asset = models.ForeignKey("assets.Asset", on_delete=models.PROTECT, related_name="holdings")
    quantity = models.BigIntegerField(default=0)
    pending_quantity = models.BigIntegerField(default=0, help_text="Reserved by primary orders, not settled yet.")
    first_acquired_at = models.DateTimeField(null=True, blank=True, help_text="Start of any lock-up.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["investor", "asset"], name="holding_one_per_investor_asset"),
            models.CheckConstraint(condition=Q(quantity__gte=0), name="holding_quantity_not_negative"),
            models.CheckConstraint(condition=Q(pending_quantity__gte=0), name="holding_pending_not_negative"),
        ]

    def __str__(self):
        return f"{self.investor} holds {self.quantity} of {self.asset}"


class Offering(models.Model):
    """The primary offering of one live asset: the treasury sells `fractions_for_sale`
    units at a fixed price. `fractions_sold` counts reserved and settled units; it only
    changes under the offering's row lock and a database check keeps it within supply."""

    class Status(models.TextChoices):
        UPCOMING = "upcoming", "Upcoming"
        OPEN = "open", "Open"
        CLOSED = "closed", "Closed"
        SOLD_OUT = "sold_out", "Sold out"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    asset = models.OneToOneField("assets.Asset", on_delete=models.PROTECT, related_name="offering")
    price_per_fraction_minor = models.BigIntegerField(validators=[MinValueValidator(1)])
    currency = models.CharField(max_length=3, choices=CURRENCY_CHOICES)
    fractions_for_sale = models.BigIntegerField(validators=[MinValueValidator(1)])
    fractions_sold = models.BigIntegerField(default=0, editable=False)
    min_purchase = models.BigIntegerField(default=1, validators=[MinValueValidator(1)])
    max_purchase = models.BigIntegerField(null=True, blank=True, validators=[MinValueValidator(1)])
    fee_bps = models.PositiveIntegerField(
        default=100,
        validators=[MaxValueValidator(10_000)],
        help_text="Platform fee charged to the buyer on top of the price, in basis points (100 = 1%).",
    )
    opens_at = models.DateTimeField(null=True, blank=True)
    closes_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(
        max_length=16,
        choices=Status.choices,
        default=Status.OPEN,
        db_index=True,
        help_text="Staff close an offering early by setting it to closed.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(fractions_sold__gte=0), name="offering_sold_not_negative"),
            models.CheckConstraint(
                condition=Q(fractions_sold__lte=F("fractions_for_sale")), name="offering_no_oversell"
            ),
            models.CheckConstraint(condition=Q(price_per_fraction_minor__gte=1), name="offering_price_positive"),
            models.CheckConstraint(condition=Q(min_purchase__gte=1), name="offering_min_purchase_positive"),
            models.CheckConstraint(condition=Q(fee_bps__lte=10_000), name="offering_fee_at_most_100pct"),
        ]

    def __str__(self):
        return f"Offering of {self.asset}"

    @property
    def remaining(self) -> int:
        return self.fractions_for_sale - self.fractions_sold

    def window_status(self, at=None) -> str:
        """The offering window, the one place it is checked: UPCOMING before `opens_at`,
        CLOSED from `closes_at`, OPEN in between (or with no window)."""
        at = at or timezone.now()
        if self.closes_at and at >= self.closes_at:
            return self.Status.CLOSED
        if self.opens_at and at < self.opens_at:
            return self.Status.UPCOMING
        return self.Status.OPEN

    def current_status(self, at=None) -> str:
        """What a buyer sees now: the stored status refined by supply and the window."""
        if self.status == self.Status.CLOSED:
            return self.Status.CLOSED
        if self.remaining <= 0:
            return self.Status.SOLD_OUT
        window = self.window_status(at)
        if window == self.Status.CLOSED:
            return self.Status.CLOSED
        if self.status == self.Status.UPCOMING or window == self.Status.UPCOMING:
            return self.Status.UPCOMING
        return self.Status.OPEN

    def current_status_label(self) -> str:
        return self.Status(self.current_status()).label


class LedgerAccount(models.Model):
    """One balance in one currency. Investors have an available and a held account per
    currency; each issuer a proceeds account; the platform a fee account and the bank
    account (cash that entered or left the platform: its balance is minus the cash we
    owe, the one account allowed below zero)."""

    class Kind(models.TextChoices):
        INVESTOR_AVAILABLE = "investor_available", "Investor cash available"
        INVESTOR_HELD = "investor_held", "Investor cash held"
        ISSUER_PROCEEDS = "issuer_proceeds", "Issuer proceeds"
        PLATFORM_FEES = "platform_fees", "Platform fees"
        BANK = "bank", "Bank (external)"

    USER_KINDS = (Kind.INVESTOR_AVAILABLE, Kind.INVESTOR_HELD, Kind.ISSUER_PROCEEDS)

    kind = models.CharField(max_length=24, choices=Kind.choices)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="ledger_accounts"
    )
    currency = models.CharField(max_length=3)
    balance = models.BigIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["kind", "currency", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "user", "currency"],
                condition=Q(user__isnull=False),
                name="ledger_account_one_per_user_kind_currency",
            ),
            models.UniqueConstraint(
                fields=["kind", "currency"],
                condition=Q(user__isnull=True),
                name="ledger_account_one_per_platform_kind_currency",
            ),
            models.CheckConstraint(condition=Q(balance__gte=0) | Q(kind="bank"), name="ledger_balance_not_negative"),
            models.CheckConstraint(
                condition=(
                    Q(kind__in=["investor_available", "investor_held", "issuer_proceeds"], user__isnull=False)
                    | (Q(kind__in=["platform_fees", "bank"]) & Q(user__isnull=True))
                ),
                name="ledger_account_owner_matches_kind",
            ),
        ]

    def __str__(self):
        owner = f" of {self.user}" if self.user_id else ""
        return f"{self.get_kind_display()}{owner} ({self.currency})"


class JournalEntry(models.Model):
    """One movement of cash: its postings sum to zero per currency."""

    class Kind(models.TextChoices):
        DEPOSIT = "deposit", "Deposit"
        WITHDRAWAL_REQUEST = "withdrawal_request", "Withdrawal requested (cash held)"
        WITHDRAWAL_PAID = "withdrawal_paid", "Withdrawal paid"
        WITHDRAWAL_REJECTED = "withdrawal_rejected", "Withdrawal rejected (cash released)"
        PURCHASE_RESERVE = "purchase_reserve", "Purchase: cash held"
        PURCHASE_SETTLE = "purchase_settle", "Purchase settled: paid to issuer and fee"
        PURCHASE_REFUND = "purchase_refund", "Purchase refunded"

    kind = models.CharField(max_length=24, choices=Kind.choices)
    memo = models.CharField(max_length=300, blank=True)
    order = models.ForeignKey("PrimaryOrder", null=True, blank=True, on_delete=models.PROTECT, related_name="entries")
    deposit = models.OneToOneField("Deposit", null=True, blank=True, on_delete=models.PROTECT, related_name="entry")
    withdrawal = models.ForeignKey(
        "Withdrawal", null=True, blank=True, on_delete=models.PROTECT, related_name="entries"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name_plural = "journal entries"

    def __str__(self):
        return f"#{self.pk} {self.get_kind_display()}"


class Posting(models.Model):
    entry = models.ForeignKey(JournalEntry, on_delete=models.PROTECT, related_name="postings")
    account = models.ForeignKey(LedgerAccount, on_delete=models.PROTECT, related_name="postings")
    amount_minor = models.BigIntegerField(help_text="Positive credits the account's balance, negative debits it.")

    class Meta:
        ordering = ["pk"]
        constraints = [models.CheckConstraint(condition=~Q(amount_minor=0), name="posting_amount_not_zero")]

    def __str__(self):
        return f"{self.amount_minor:+d} {self.account}"


class PrimaryOrder(models.Model):
    """An investor's purchase from a primary offering.

    reserved → settled (the clawback transfer confirmed) | failed (settlement rejected;
    staff retry it → reserved, or compensate it → refunded). Cash is held from placement
    and paid to the issuer (and fee) when the settlement confirms."""

    class Status(models.TextChoices):
        RESERVED = "reserved", "Reserved"
        SETTLED = "settled", "Settled"
        FAILED = "failed", "Settlement failed"
        REFUNDED = "refunded", "Refunded"

    FINAL = (Status.SETTLED, Status.REFUNDED)

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    investor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="primary_orders")
    offering = models.ForeignKey(Offering, on_delete=models.PROTECT, related_name="orders")
    asset = models.ForeignKey("assets.Asset", on_delete=models.PROTECT, related_name="primary_orders")
    idempotency_key = models.CharField(max_length=64)
    quantity = models.BigIntegerField(validators=[MinValueValidator(1)])
    price_per_fraction_minor = models.BigIntegerField()
    gross_minor = models.BigIntegerField()
    fee_minor = models.BigIntegerField()
    total_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RESERVED, db_index=True)
    chain_tx = models.OneToOneField(
        "chain.ChainTransaction", null=True, blank=True, on_delete=models.PROTECT, related_name="primary_order"
    )
    failure_reason = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    settled_at = models.DateTimeField(null=True, blank=True)
    refunded_at = models.DateTimeField(null=True, blank=True)
    # Not a column: set by services.order_place on the order it returns (True when the
    # call repeated an earlier one).
    replayed: bool

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["investor", "idempotency_key"], name="primary_order_idempotent"),
            models.CheckConstraint(condition=Q(quantity__gte=1), name="primary_order_quantity_positive"),
            models.CheckConstraint(
                condition=Q(fee_minor__gte=0) & Q(gross_minor__gte=1), name="primary_order_amounts_positive"
            ),
            models.CheckConstraint(
                condition=Q(total_minor=F("gross_minor") + F("fee_minor")), name="primary_order_total_adds_up"
            ),
        ]
        indexes = [models.Index(fields=["offering", "status"])]

    def __str__(self):
        return f"Order {self.public_id.hex[:8]}: {self.quantity} × {self.asset}"

    @property
    def is_final(self) -> bool:
        return self.status in self.FINAL


class Deposit(models.Model):
    """Cash received in the platform's bank account for an investor, recorded by staff."""

    investor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="deposits")
    amount_minor = models.BigIntegerField(validators=[MinValueValidator(1)])
    currency = models.CharField(max_length=3)
    bank_reference = models.CharField(
        max_length=100, unique=True, help_text="The bank's reference for the incoming payment (each is recorded once)."
    )
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [models.CheckConstraint(condition=Q(amount_minor__gte=1), name="deposit_amount_positive")]

    def __str__(self):
        return f"Deposit {self.bank_reference}"


class Withdrawal(models.Model):
    class Status(models.TextChoices):
        REQUESTED = "requested", "Requested"
        PAID = "paid", "Paid"
        REJECTED = "rejected", "Rejected"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    investor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="withdrawals")
    amount_minor = models.BigIntegerField(validators=[MinValueValidator(1)])
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.REQUESTED, db_index=True)
    bank_reference = models.CharField(max_length=100, blank=True)
    reason = models.TextField(blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [models.CheckConstraint(condition=Q(amount_minor__gte=1), name="withdrawal_amount_positive")]

    def __str__(self):
        return f"Withdrawal {self.public_id.hex[:8]} ({self.get_status_display()})"
