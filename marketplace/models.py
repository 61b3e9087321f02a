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

from config.money import CURRENCY_CHOICES, format_money


class Holding(models.Model):
    """How many fractions of an asset an investor owns according to our books.
    `quantity` counts settled units only: it must equal the investor's on-chain balance
    (chain reconciliation checks exactly that). `pending_quantity` counts units bought
    and paid for (primary orders, trades) whose settlement has not confirmed yet (they
    count toward holding limits and the holder count, never toward what can be sold).
    Of the settled units, `locked_quantity` are locked by open sell orders and
    `pending_out_quantity` are sold in trades still settling (they leave `quantity`
    when the delivery confirms). What can be sold is `available_to_sell`."""

    investor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="holdings")
    asset = models.ForeignKey("assets.Asset", on_delete=models.PROTECT, related_name="holdings")
    quantity = models.BigIntegerField(default=0)
    pending_quantity = models.BigIntegerField(
        default=0, help_text="Bought (primary orders, trades) and paid for, not settled on chain yet."
    )
    locked_quantity = models.BigIntegerField(
        default=0, help_text="Settled units locked by open sell orders (part of quantity)."
    )
    pending_out_quantity = models.BigIntegerField(
        default=0, help_text="Settled units sold in trades whose delivery has not confirmed yet (part of quantity)."
    )
    first_acquired_at = models.DateTimeField(null=True, blank=True, help_text="Start of any lock-up.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["investor", "asset"], name="holding_one_per_investor_asset"),
            models.CheckConstraint(condition=Q(quantity__gte=0), name="holding_quantity_not_negative"),
            models.CheckConstraint(condition=Q(pending_quantity__gte=0), name="holding_pending_not_negative"),
            models.CheckConstraint(condition=Q(locked_quantity__gte=0), name="holding_locked_not_negative"),
            models.CheckConstraint(condition=Q(pending_out_quantity__gte=0), name="holding_pending_out_not_negative"),
            models.CheckConstraint(
                condition=Q(quantity__gte=F("locked_quantity") + F("pending_out_quantity")),
                name="holding_locked_within_settled",
            ),
        ]

    def __str__(self):
        return f"{self.investor} holds {self.quantity} of {self.asset}"

    @property
    def available_to_sell(self) -> int:
        """Settled units neither locked by open sell orders nor sold and settling: the
        one rule for what a new sell order may lock."""
        return self.quantity - self.locked_quantity - self.pending_out_quantity


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

    def window_changes_at(self, at=None):
        """The next moment `window_status` changes by itself (the window opens or closes),
        or None: what a rendering of the offering stays true until, purchases aside."""
        at = at or timezone.now()
        if self.opens_at and at < self.opens_at:
            return self.opens_at
        if self.closes_at and at < self.closes_at:
            return self.closes_at
        return None

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
        DISTRIBUTION_FUNDS = "distribution_funds", "Distributions funded, not yet paid"
        WITHHOLDING_TAX = "withholding_tax", "Withholding tax payable"
        DISTRIBUTION_SUSPENSE = "distribution_suspense", "Distributions held (suspense)"

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
                    | (
                        Q(
                            kind__in=[
                                "platform_fees",
                                "bank",
                                "distribution_funds",
                                "withholding_tax",
                                "distribution_suspense",
                            ]
                        )
                        & Q(user__isnull=True)
                    )
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
        TRADE_RESERVE = "trade_reserve", "Buy order: cash held"
        TRADE_RELEASE = "trade_release", "Buy order: cash released"
        TRADE_MATCH = "trade_match", "Trade: buyer's cash to the seller (held until delivery) and fees"
        TRADE_SETTLE = "trade_settle", "Trade settled: seller's proceeds available"
        TRADE_REVERSE = "trade_reverse", "Trade reversed: cash back to the buyer"
        DISTRIBUTION_FUND = "distribution_fund", "Distribution funded"
        DISTRIBUTION_PAY = "distribution_pay", "Distribution paid to holders"
        DISTRIBUTION_RELEASE = "distribution_release", "Held distribution released to the holder"
        DISTRIBUTION_RETURN = "distribution_return", "Distribution money returned to the issuer"

    kind = models.CharField(max_length=24, choices=Kind.choices)
    memo = models.CharField(max_length=300, blank=True)
    order = models.ForeignKey("PrimaryOrder", null=True, blank=True, on_delete=models.PROTECT, related_name="entries")
    deposit = models.OneToOneField("Deposit", null=True, blank=True, on_delete=models.PROTECT, related_name="entry")
    withdrawal = models.ForeignKey(
        "Withdrawal", null=True, blank=True, on_delete=models.PROTECT, related_name="entries"
    )
    trade_order = models.ForeignKey(
        "TradeOrder", null=True, blank=True, on_delete=models.PROTECT, related_name="entries"
    )
    trade = models.ForeignKey("Trade", null=True, blank=True, on_delete=models.PROTECT, related_name="entries")
    distribution = models.ForeignKey(
        "Distribution", null=True, blank=True, on_delete=models.PROTECT, related_name="entries"
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
        # An account's latest postings without reading its whole history (the portfolio's
        # cash events, selectors.cash_events_for; bench/scaling).
        indexes = [models.Index(fields=["account", "entry"], name="posting_account_entry_idx")]

    def __str__(self):
        sign = "+" if self.amount_minor > 0 else ""
        return f"{sign}{format_money(self.amount_minor, self.account.currency)} {self.account}"


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
    # Indexed with the id (Meta): the back office lists one status newest first.
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RESERVED)
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
        indexes = [
            models.Index(fields=["offering", "status"]),
            # An investor's latest orders (the portfolio) without sorting all of them.
            models.Index(fields=["investor", "created_at"], name="primary_order_investor_idx"),
            # One status newest first (the back office's filtered list) without walking the
            # primary key past every row of the other statuses; serves status lookups too.
            models.Index(fields=["status", "id"], name="primary_order_status_idx"),
        ]

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
    payout_account = models.ForeignKey(
        "marketplace.PayoutAccount", null=True, blank=True, on_delete=models.PROTECT, related_name="withdrawals"
    )
    batch = models.ForeignKey(
        "marketplace.PayoutBatch", null=True, blank=True, on_delete=models.PROTECT, related_name="withdrawals"
    )
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


# -- money in and out (docs/funding.md) ------------------------------------------------------


class PaymentReference(models.Model):
    """The one payment reference an investor puts on every bank transfer to us: an
    ISO 11649 creditor reference (RF + two mod-97 check digits + a random body), so a
    typo is caught on import instead of crediting someone else."""

    investor = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="payment_reference"
    )
    reference = models.CharField(max_length=25, unique=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    def __str__(self):
        return self.reference


class BankStatement(models.Model):
    """One imported bank statement (camt.053 or CSV). The same file twice is refused;
    each credit line is booked once across all statements (BankStatementLine.entry_reference)."""

    class Format(models.TextChoices):
        CAMT053 = "camt053", "ISO 20022 camt.053"
        CSV = "csv", "CSV"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    format = models.CharField(max_length=16, choices=Format.choices)
    file_name = models.CharField(max_length=200)
    file_sha256 = models.CharField(max_length=64, unique=True)
    statement_id = models.CharField(max_length=100, blank=True, help_text="The bank's id of the statement.")
    account_iban = models.CharField(max_length=34, blank=True)
    imported_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    imported_at = models.DateTimeField(default=timezone.now, editable=False)
    lines_total = models.PositiveIntegerField(default=0)
    lines_matched = models.PositiveIntegerField(default=0)
    lines_review = models.PositiveIntegerField(default=0)
    lines_skipped = models.PositiveIntegerField(default=0, help_text="Debits and lines already booked.")

    class Meta:
        ordering = ["-imported_at", "-pk"]
        permissions = [("import_bankstatement", "Can import bank statements")]

    def __str__(self):
        return f"Statement {self.statement_id or self.public_id.hex[:8]} ({self.get_format_display()})"


class BankStatementLine(models.Model):
    """A credit line of a statement: matched by its payment reference to a deposit, or
    waiting in the review queue with the reason until staff assign or return it."""

    class Status(models.TextChoices):
        MATCHED = "matched", "Matched: booked as a deposit"
        REVIEW = "review", "Waiting for review"
        ASSIGNED = "assigned", "Assigned by staff: booked as a deposit"
        RETURNED = "returned", "Returned to the sender"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    statement = models.ForeignKey(BankStatement, on_delete=models.PROTECT, related_name="lines")
    entry_reference = models.CharField(max_length=100, unique=True, help_text="The bank's unique id of the entry.")
    amount_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    booking_date = models.DateField(null=True, blank=True)
    remitter_name = models.CharField(max_length=140, blank=True)
    remitter_iban = models.CharField(max_length=34, blank=True)
    remittance_info = models.CharField(max_length=500, blank=True)
    payment_reference = models.CharField(max_length=35, blank=True, help_text="The RF reference found, if any.")
    status = models.CharField(max_length=16, choices=Status.choices, db_index=True)
    reason = models.CharField(max_length=500, blank=True, help_text="Why it waits for review (or was returned).")
    investor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    deposit = models.OneToOneField(
        Deposit, null=True, blank=True, on_delete=models.PROTECT, related_name="statement_line"
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.CheckConstraint(condition=Q(amount_minor__gte=1), name="statement_line_credit_positive"),
            models.CheckConstraint(
                condition=~Q(status__in=["matched", "assigned"]) | Q(deposit__isnull=False),
                name="statement_line_booked_has_deposit",
            ),
        ]
        permissions = [("review_bankstatementline", "Can assign or return unmatched bank statement lines")]

    def __str__(self):
        return f"Statement line {self.entry_reference}"


class PayoutAccount(models.Model):
    """A bank account an investor saved for withdrawals. It can be used once its
    cooling-off period has passed (a mail went to the investor when it was added) and,
    when the holder's name does not match the verified KYC name, once staff cleared it."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        REVIEW = "review", "Waiting for review (name differs from your verified name)"
        REJECTED = "rejected", "Rejected"
        REMOVED = "removed", "Removed"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    investor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="payout_accounts")
    label = models.CharField(max_length=60, blank=True)
    holder_name = models.CharField(max_length=70)
    iban = models.CharField(max_length=34)
    bic = models.CharField(max_length=11, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE, db_index=True)
    name_matches_kyc = models.BooleanField(default=False)
    usable_from = models.DateTimeField(help_text="End of the cooling-off period.")
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    review_reason = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["investor", "iban"], condition=~Q(status="removed"), name="payout_account_once_per_investor"
            )
        ]
        permissions = [("review_payoutaccount", "Can clear or reject payout accounts flagged for review")]

    def __str__(self):
        return f"{self.holder_name} {self.iban[:4]}…{self.iban[-4:]}"


class PayoutBatch(models.Model):
    """Approved withdrawals exported together as one SEPA credit-transfer file
    (pain.001). Marking the batch as sent pays its withdrawals, exactly once."""

    class Status(models.TextChoices):
        EXPORTED = "exported", "Exported, not sent yet"
        SENT = "sent", "Sent to the bank: withdrawals paid"
        CANCELLED = "cancelled", "Cancelled: withdrawals back in the queue"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.EXPORTED, db_index=True)
    message_id = models.CharField(max_length=35, unique=True)
    total_minor = models.BigIntegerField(default=0)
    count = models.PositiveIntegerField(default=0)
    file_sha256 = models.CharField(max_length=64, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    sent_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        permissions = [("pay_withdrawals", "Can export payout files and mark them sent")]

    def __str__(self):
        return f"Payout batch {self.message_id} ({self.get_status_display()})"


# -- secondary market ----------------------------------------------------------------------


def _default_maker_fee_bps() -> int:
    return settings.MARKETPLACE_MAKER_FEE_BPS


def _default_taker_fee_bps() -> int:
    return settings.MARKETPLACE_TAKER_FEE_BPS


class Market(models.Model):
    """The secondary market (order book) of one asset, in its offering's currency.

    The row is the book's lock: every change to the book (place, match, cancel, modify,
    expire) takes it FOR NO KEY UPDATE first (marketplace/locks.py), so matching per
    asset is serialised and different assets match in parallel. `order_sequence` hands out
    time priority (a counter under that lock). `trading_mode` is the seam for halts and
    auctions: only "continuous" accepts orders today."""

    class TradingMode(models.TextChoices):
        CONTINUOUS = "continuous", "Continuous trading"
        AUCTION = "auction", "Periodic call auction"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    asset = models.OneToOneField("assets.Asset", on_delete=models.PROTECT, related_name="market")
    currency = models.CharField(max_length=3, choices=CURRENCY_CHOICES)
    trading_mode = models.CharField(
        max_length=16, choices=TradingMode.choices, default=TradingMode.CONTINUOUS, db_index=True
    )
    maker_fee_bps = models.PositiveIntegerField(
        default=_default_maker_fee_bps,
        validators=[MaxValueValidator(10_000)],
        help_text="Fee of the resting order's owner, in basis points of price × quantity.",
    )
    taker_fee_bps = models.PositiveIntegerField(
        default=_default_taker_fee_bps,
        validators=[MaxValueValidator(10_000)],
        help_text="Fee of the incoming order's owner, in basis points of price × quantity.",
    )
    order_sequence = models.BigIntegerField(default=0, editable=False, help_text="Last time priority handed out.")
    last_price_minor = models.BigIntegerField(null=True, blank=True, editable=False)
    last_trade_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Controls (docs/market-integrity.md). Each change goes through market_controls under
    # the book's lock, is audited and recorded as a MarketEvent.
    halted = models.BooleanField(default=False, help_text="No new orders and no matching; cancels still work.")
    halt_reason = models.CharField(max_length=500, blank=True)
    halted_at = models.DateTimeField(null=True, blank=True)
    band_pct = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(1000)],
        help_text="Price band: % either side of the reference price. Empty: MARKETPLACE_PRICE_BAND_PCT.",
    )
    time_zone = models.CharField(max_length=64, default="UTC", help_text="IANA name, for trading hours and auctions.")
    trading_hours = models.JSONField(
        default=dict,
        blank=True,
        help_text='Weekly schedule {"mon": ["09:00", "17:30"], ...} in the time zone; empty: always open.',
    )
    auction_times = models.JSONField(
        default=list, blank=True, help_text='Daily uncrossing times in auction mode, e.g. ["15:00"].'
    )
    next_auction_at = models.DateTimeField(
        null=True,
        blank=True,
        db_index=True,
        help_text="When the book next uncrosses (auction mode, a reopening, a session open, a band breach).",
    )
    auction_reason = models.CharField(max_length=32, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["pk"]
        permissions = [
            ("halt_market", "Can halt and resume trading"),
            ("change_market_controls", "Can change price bands, trading hours and trading mode"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(maker_fee_bps__lte=10_000), name="market_maker_fee_at_most_100pct"),
            models.CheckConstraint(condition=Q(taker_fee_bps__lte=10_000), name="market_taker_fee_at_most_100pct"),
        ]

    def __str__(self):
        return f"Market of {self.asset}"

    @property
    def max_fee_bps(self) -> int:
        return max(self.maker_fee_bps, self.taker_fee_bps)


class TradeOrder(models.Model):
    """A limit order on a market. open → filled | cancelled | expired.

    `quantity` is the original size; `filled_quantity` + `remaining_quantity` = `quantity`
    always (a CHECK); an order that is no longer open keeps its unfilled rest in
    `remaining_quantity`. A buy holds `reserved_minor` of the investor's held cash (the
    limit price × remaining + the maximum fee on it, `fee_bps_reserved`); a sell locks
    `remaining_quantity` units of the holding while open. `priority` is the time priority
    within the book (lower first); lowering only the quantity keeps it."""

    class Side(models.TextChoices):
        BUY = "buy", "Buy"
        SELL = "sell", "Sell"

    class TimeInForce(models.TextChoices):
        GTC = "gtc", "Good till cancelled"
        GTD = "gtd", "Good till date"
        IOC = "ioc", "Immediate or cancel"
        FOK = "fok", "Fill or kill"

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        FILLED = "filled", "Filled"
        CANCELLED = "cancelled", "Cancelled"
        EXPIRED = "expired", "Expired"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    market = models.ForeignKey(Market, on_delete=models.PROTECT, related_name="orders")
    asset = models.ForeignKey("assets.Asset", on_delete=models.PROTECT, related_name="trade_orders")
    investor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="trade_orders")
    idempotency_key = models.CharField(max_length=64)
    side = models.CharField(max_length=4, choices=Side.choices)
    quantity = models.BigIntegerField(help_text="Original quantity, in whole fractions.")
    filled_quantity = models.BigIntegerField(default=0)
    remaining_quantity = models.BigIntegerField()
    limit_price_minor = models.BigIntegerField(help_text="Limit price per fraction, in minor units.")
    currency = models.CharField(max_length=3)
    time_in_force = models.CharField(max_length=3, choices=TimeInForce.choices, default=TimeInForce.GTC)
    expires_at = models.DateTimeField(null=True, blank=True)
    # Indexed with the id (Meta): the back office lists one status newest first.
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    priority = models.BigIntegerField(help_text="Time priority within the book: lower is earlier.")
    fee_bps_reserved = models.PositiveIntegerField(
        default=0, help_text="Buy: the fee rate the reservation covers (the market's highest at placement)."
    )
    reserved_minor = models.BigIntegerField(default=0, help_text="Buy: cash held for the open remainder.")
    cancel_code = models.CharField(max_length=40, blank=True)
    cancel_reason = models.TextField(blank=True)
    cancelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    replaces = models.OneToOneField("self", null=True, blank=True, on_delete=models.PROTECT, related_name="replaced_by")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    # Not a column: set by trading.trade_order_place / _modify on the order they return
    # (True when the call repeated an earlier one).
    replayed: bool

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["investor", "idempotency_key"], name="trade_order_idempotent"),
            models.CheckConstraint(condition=Q(quantity__gte=1), name="trade_order_quantity_positive"),
            models.CheckConstraint(condition=Q(filled_quantity__gte=0), name="trade_order_filled_not_negative"),
            models.CheckConstraint(condition=Q(remaining_quantity__gte=0), name="trade_order_remaining_not_negative"),
            models.CheckConstraint(
                condition=Q(quantity=F("filled_quantity") + F("remaining_quantity")),
                name="trade_order_filled_plus_remaining",
            ),
            models.CheckConstraint(condition=Q(limit_price_minor__gte=1), name="trade_order_price_positive"),
            models.CheckConstraint(condition=Q(reserved_minor__gte=0), name="trade_order_reserved_not_negative"),
            models.CheckConstraint(
                condition=~Q(status="open") | Q(remaining_quantity__gte=1), name="trade_order_open_has_remainder"
            ),
            models.CheckConstraint(
                condition=Q(status="open") | Q(reserved_minor=0), name="trade_order_closed_reserves_nothing"
            ),
            models.CheckConstraint(
                condition=Q(side="buy") | Q(reserved_minor=0), name="trade_order_sell_reserves_no_cash"
            ),
            models.CheckConstraint(
                condition=Q(time_in_force="gtd", expires_at__isnull=False)
                | (~Q(time_in_force="gtd") & Q(expires_at__isnull=True)),
                name="trade_order_expiry_iff_gtd",
            ),
        ]
        indexes = [
            models.Index(
                fields=["market", "side", "limit_price_minor", "priority"],
                condition=Q(status="open"),
                name="trade_order_book_idx",
            ),
            models.Index(fields=["investor", "status"], name="trade_order_investor_idx"),
            models.Index(fields=["investor", "created_at"], name="trade_order_rate_idx"),
            # One status newest first (the back office's filtered list) without walking the
            # primary key past every closed order; serves status lookups too.
            models.Index(fields=["status", "id"], name="trade_order_status_idx"),
            models.Index(
                fields=["expires_at"], condition=Q(status="open", time_in_force="gtd"), name="trade_order_gtd_idx"
            ),
        ]
        permissions = [("cancel_any_tradeorder", "Can cancel any investor's trade order (with a reason)")]

    def __str__(self):
        return f"{self.get_side_display()} {self.quantity} × {self.asset} @ {self.limit_price_minor}"

    @property
    def is_open(self) -> bool:
        return self.status == self.Status.OPEN

    @property
    def is_partially_filled(self) -> bool:
        return self.filled_quantity > 0 and self.remaining_quantity > 0


class Trade(models.Model):
    """One match between a buy and a sell order, at the resting (maker) order's price.

    matched → confirmed (the clawback transfer seller → buyer confirmed on chain) |
    failed (settlement refused; staff retry it → matched, or reverse it → reversed).
    `settlement_status` adds "submitted" from the outbox row for display."""

    class Status(models.TextChoices):
        MATCHED = "matched", "Matched"
        CONFIRMED = "confirmed", "Confirmed"
        FAILED = "failed", "Settlement failed"
        REVERSED = "reversed", "Reversed"

    UNSETTLED = (Status.MATCHED, Status.FAILED)

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    market = models.ForeignKey(Market, on_delete=models.PROTECT, related_name="trades")
    asset = models.ForeignKey("assets.Asset", on_delete=models.PROTECT, related_name="trades")
    buy_order = models.ForeignKey(TradeOrder, on_delete=models.PROTECT, related_name="buy_trades")
    sell_order = models.ForeignKey(TradeOrder, on_delete=models.PROTECT, related_name="sell_trades")
    buyer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="trades_bought")
    seller = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="trades_sold")
    quantity = models.BigIntegerField()
    price_minor = models.BigIntegerField()
    gross_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    maker_side = models.CharField(max_length=4, choices=TradeOrder.Side.choices)
    maker_fee_bps = models.PositiveIntegerField()
    taker_fee_bps = models.PositiveIntegerField()
    buyer_fee_bps = models.PositiveIntegerField()
    seller_fee_bps = models.PositiveIntegerField()
    buyer_fee_minor = models.BigIntegerField()
    seller_fee_minor = models.BigIntegerField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.MATCHED, db_index=True)
    # The band in force when it printed (None: no reference price, no band) and the
    # auction that printed it (None: continuous matching). market_check proves both.
    band_low_minor = models.BigIntegerField(null=True, blank=True)
    band_high_minor = models.BigIntegerField(null=True, blank=True)
    auction = models.ForeignKey(
        "marketplace.Auction", null=True, blank=True, on_delete=models.PROTECT, related_name="trades"
    )
    chain_tx = models.OneToOneField(
        "chain.ChainTransaction", null=True, blank=True, on_delete=models.PROTECT, related_name="trade"
    )
    failure_reason = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    settled_at = models.DateTimeField(null=True, blank=True)
    reversed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gte=1), name="trade_quantity_positive"),
            models.CheckConstraint(condition=Q(price_minor__gte=1), name="trade_price_positive"),
            models.CheckConstraint(
                condition=Q(buyer_fee_minor__gte=0) & Q(seller_fee_minor__gte=0), name="trade_fees_not_negative"
            ),
            models.CheckConstraint(condition=Q(seller_fee_minor__lte=F("gross_minor")), name="trade_fee_within_gross"),
            models.CheckConstraint(condition=~Q(buyer=F("seller")), name="trade_no_self_trade"),
        ]
        indexes = [models.Index(fields=["market", "-created_at"], name="trade_market_recent_idx")]
        permissions = [
            ("retry_trade", "Can retry a failed trade settlement"),
            ("reverse_trade", "Can reverse a failed trade (refund the buyer, release the units)"),
        ]

    def __str__(self):
        return f"Trade {self.public_id.hex[:8]}: {self.quantity} × {self.asset} @ {self.price_minor}"

    @property
    def buyer_cost_minor(self) -> int:
        """What the buyer paid: price × quantity + the buyer's fee."""
        return self.gross_minor + self.buyer_fee_minor

    @property
    def seller_net_minor(self) -> int:
        """What the seller receives: price × quantity − the seller's fee."""
        return self.gross_minor - self.seller_fee_minor

    @property
    def settlement_status(self) -> str:
        """matched → submitted → confirmed | failed | reversed (submitted from the outbox row)."""
        chain_tx = self.chain_tx if self.chain_tx_id is not None else None
        if self.status == self.Status.MATCHED and chain_tx is not None and chain_tx.status == "submitted":
            return "submitted"
        return self.status


class MarketWideControl(models.Model):
    """The one row (pk=1) of the whole market's halt. A market-wide halt locks this row,
    then every book in pk order, so no trade commits after it; creating a book reads it
    FOR SHARE (market_controls)."""

    halted = models.BooleanField(default=False)
    reason = models.CharField(max_length=500, blank=True)
    changed_at = models.DateTimeField(null=True, blank=True)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(pk=1), name="market_wide_control_singleton")]

    def __str__(self):
        return "Whole market: halted" if self.halted else "Whole market: trading"


class MarketEvent(models.Model):
    """The timeline of a book's controls and auctions (market=None: the whole market).
    Shown on the trade page; market_check reads the halt intervals from it."""

    class Kind(models.TextChoices):
        HALTED = "halted", "Trading halted"
        RESUMED = "resumed", "Trading resumed"
        BAND_CHANGED = "band_changed", "Price band changed"
        MODE_CHANGED = "mode_changed", "Trading mode changed"
        HOURS_CHANGED = "hours_changed", "Trading hours changed"
        AUCTION_CALLED = "auction_called", "Auction called"
        AUCTION_UNCROSSED = "auction_uncrossed", "Auction uncrossed"
        AUCTION_EXTENDED = "auction_extended", "Auction extended"
        AUCTION_SKIPPED = "auction_skipped", "Auction skipped"
        VALUATION_PUBLISHED = "valuation_published", "Valuation published"

    market = models.ForeignKey(Market, null=True, blank=True, on_delete=models.PROTECT, related_name="events")
    kind = models.CharField(max_length=32, choices=Kind.choices)
    at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    message = models.CharField(max_length=1000, blank=True)
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at", "-pk"]
        indexes = [models.Index(fields=["market", "-at"], name="market_event_recent_idx")]

    def __str__(self):
        return f"{self.get_kind_display()} at {self.at:%Y-%m-%d %H:%M}"


class Auction(models.Model):
    """One scheduled uncrossing of a book (docs/market-integrity.md): the price that
    executes the most units, then the smallest imbalance, then the closest to the
    reference price; every fill at that price."""

    class Reason(models.TextChoices):
        SCHEDULED = "scheduled", "Scheduled auction"
        REOPENING = "reopening", "Reopening after a halt"
        SESSION_OPEN = "session_open", "Opening of the trading session"
        BAND = "band", "Price outside the band"

    class Status(models.TextChoices):
        UNCROSSED = "uncrossed", "Uncrossed"
        NO_CROSS = "no_cross", "Nothing to cross"
        EXTENDED = "extended", "Extended (price outside the band)"
        SKIPPED = "skipped", "Skipped"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    market = models.ForeignKey(Market, on_delete=models.PROTECT, related_name="auctions")
    reason = models.CharField(max_length=32, choices=Reason.choices)
    scheduled_at = models.DateTimeField()
    ran_at = models.DateTimeField(default=timezone.now)
    status = models.CharField(max_length=16, choices=Status.choices)
    clearing_price_minor = models.BigIntegerField(null=True, blank=True)
    matched_quantity = models.BigIntegerField(default=0)
    imbalance = models.BigIntegerField(default=0, help_text="Units left on the heavier side at the clearing price.")
    reference_price_minor = models.BigIntegerField(null=True, blank=True)
    band_low_minor = models.BigIntegerField(null=True, blank=True)
    band_high_minor = models.BigIntegerField(null=True, blank=True)
    message = models.CharField(max_length=1000, blank=True)

    class Meta:
        ordering = ["-ran_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["market", "scheduled_at"], name="auction_once_per_schedule"),
            models.CheckConstraint(condition=Q(matched_quantity__gte=0), name="auction_matched_not_negative"),
        ]

    def __str__(self):
        return f"Auction {self.public_id.hex[:8]} ({self.get_status_display()})"


class Valuation(models.Model):
    """A published value per fraction of an asset, backed by a document (an appraisal,
    a financial statement) uploaded through the asset's document pipeline. Staff publish
    directly; an issuer's valuation waits for staff approval. The latest published one
    (by as_of) is the reference price when the book has not traded lately."""

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting for approval"
        PUBLISHED = "published", "Published"
        REJECTED = "rejected", "Rejected"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    asset = models.ForeignKey("assets.Asset", on_delete=models.PROTECT, related_name="valuations")
    value_per_fraction_minor = models.BigIntegerField(validators=[MinValueValidator(1)])
    currency = models.CharField(max_length=3, choices=CURRENCY_CHOICES)
    as_of = models.DateField()
    document = models.ForeignKey("assets.AssetDocument", on_delete=models.PROTECT, related_name="valuations")
    note = models.CharField(max_length=1000, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True)
    submitted_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_reason = models.CharField(max_length=1000, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["-as_of", "-pk"]
        constraints = [
            models.CheckConstraint(condition=Q(value_per_fraction_minor__gte=1), name="valuation_positive"),
        ]
        indexes = [models.Index(fields=["asset", "status", "-as_of"], name="valuation_latest_idx")]
        permissions = [("publish_valuation", "Can publish and approve valuations")]

    def __str__(self):
        return f"Valuation of {self.asset} as of {self.as_of}"


class Distribution(models.Model):
    """Income paid to an asset's holders pro rata to the units they held at the record
    date-time (docs/distributions.md).

    declared → approved (a second staff member) → paying → paid; cancelled before any
    payment. Funding (a deposit, or the issuer's proceeds) must reach the gross amount
    before it can be paid."""

    class Kind(models.TextChoices):
        RENT = "rent", "Rent"
        INTEREST = "interest", "Interest"
        DIVIDEND = "dividend", "Dividend"
        RETURN_OF_CAPITAL = "return_of_capital", "Return of capital"
        FINAL_REDEMPTION = "final_redemption", "Final redemption"

    class Status(models.TextChoices):
        DECLARED = "declared", "Declared, waiting for approval"
        APPROVED = "approved", "Approved"
        PAYING = "paying", "Being paid"
        PAID = "paid", "Paid"
        CANCELLED = "cancelled", "Cancelled"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    asset = models.ForeignKey("assets.Asset", on_delete=models.PROTECT, related_name="distributions")
    kind = models.CharField(max_length=24, choices=Kind.choices)
    gross_minor = models.BigIntegerField(validators=[MinValueValidator(1)])
    currency = models.CharField(max_length=3, choices=CURRENCY_CHOICES)
    period_start = models.DateField()
    period_end = models.DateField()
    record_at = models.DateTimeField(help_text="Holders at this moment are entitled.")
    payment_date = models.DateField()
    note = models.CharField(max_length=1000, blank=True)
    document = models.ForeignKey(
        "assets.AssetDocument", null=True, blank=True, on_delete=models.PROTECT, related_name="distributions"
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DECLARED, db_index=True)
    funded_minor = models.BigIntegerField(default=0, editable=False)
    total_units = models.BigIntegerField(
        null=True, blank=True, editable=False, help_text="Units entitled at the record date (the asset's supply)."
    )
    declared_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    declared_at = models.DateTimeField(default=timezone.now, editable=False)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    cancelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    cancelled_at = models.DateTimeField(null=True, blank=True)
    cancel_reason = models.CharField(max_length=1000, blank=True)
    paid_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    paying_started_at = models.DateTimeField(null=True, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-payment_date", "-pk"]
        constraints = [
            models.CheckConstraint(condition=Q(gross_minor__gte=1), name="distribution_gross_positive"),
            models.CheckConstraint(
                condition=Q(funded_minor__gte=0) & Q(funded_minor__lte=F("gross_minor")),
                name="distribution_funded_within_gross",
            ),
            models.CheckConstraint(condition=Q(period_start__lte=F("period_end")), name="distribution_period_order"),
            models.CheckConstraint(
                condition=Q(approved_by__isnull=True) | ~Q(approved_by=F("declared_by")),
                name="distribution_four_eyes",
            ),
        ]
        indexes = [models.Index(fields=["status", "payment_date"], name="distribution_due_idx")]
        permissions = [
            ("approve_distribution", "Can approve a distribution declared by someone else"),
            ("pay_distribution", "Can fund and pay distributions"),
            ("release_distribution_payment", "Can release or return a held distribution payment"),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} on {self.asset} paid {self.payment_date}"

    @property
    def is_fully_funded(self) -> bool:
        return self.funded_minor == self.gross_minor


class DistributionPayment(models.Model):
    """One holder's share of a distribution (the issuer's, for the treasury's units).

    pending (computed, not yet booked) → paid | held (compliance stops it: KYC lapsed,
    frozen, sanctioned; the gross waits in suspense) → released (paid later) | returned
    (to the issuer). gross = net + withheld for paid and released shares."""

    class Status(models.TextChoices):
        PENDING = "pending", "To be paid"
        PAID = "paid", "Paid"
        HELD = "held", "Held"
        RELEASED = "released", "Released and paid"
        RETURNED = "returned", "Returned to the issuer"

    PAID_OUT = (Status.PAID, Status.RELEASED)

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    distribution = models.ForeignKey(Distribution, on_delete=models.PROTECT, related_name="payments")
    investor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    treasury = models.BooleanField(default=False, help_text="The issuer's share for the unsold (treasury) units.")
    units = models.BigIntegerField()
    gross_minor = models.BigIntegerField()
    withholding_rate_bps = models.PositiveIntegerField(default=0)
    withheld_minor = models.BigIntegerField(default=0)
    net_minor = models.BigIntegerField(default=0)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True)
    hold_codes = models.CharField(max_length=200, blank=True)
    hold_reason = models.CharField(max_length=1000, blank=True)
    entry = models.ForeignKey(
        JournalEntry, null=True, blank=True, on_delete=models.PROTECT, related_name="distribution_payments"
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    reinvestment = models.CharField(
        max_length=300, blank=True, help_text="What the holder's reinvestment instruction did with the net amount."
    )

    class Meta:
        ordering = ["distribution", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["distribution", "investor", "treasury"], name="distribution_payment_once"),
            models.CheckConstraint(condition=Q(units__gte=1), name="distribution_payment_units_positive"),
            models.CheckConstraint(
                condition=Q(gross_minor__gte=0) & Q(withheld_minor__gte=0) & Q(net_minor__gte=0),
                name="distribution_payment_not_negative",
            ),
            models.CheckConstraint(
                condition=~Q(status__in=["paid", "released"]) | Q(gross_minor=F("net_minor") + F("withheld_minor")),
                name="distribution_payment_gross_is_net_plus_withheld",
            ),
        ]
        indexes = [
            models.Index(fields=["investor", "status"], name="distribution_payment_inv_idx"),
            # The pay run's next batch: pending shares of one distribution in pk order.
            models.Index(
                fields=["distribution", "id"], condition=Q(status="pending"), name="distribution_payment_todo_idx"
            ),
        ]

    def __str__(self):
        return f"{self.investor} × {self.units} of {self.distribution}"


class ReinvestmentInstruction(models.Model):
    """An investor's standing request: reinvest what distributions of this asset pay
    them into the same asset, in the open primary offering or with a buy order on the
    secondary market at a limit they set. What cannot be spent stays as cash."""

    class Target(models.TextChoices):
        PRIMARY = "primary", "The open primary offering"
        MARKET = "market", "A buy order on the secondary market"

    investor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    asset = models.ForeignKey("assets.Asset", on_delete=models.CASCADE, related_name="+")
    target = models.CharField(max_length=8, choices=Target.choices)
    limit_price_minor = models.BigIntegerField(
        null=True, blank=True, help_text="Secondary market: the most to pay per fraction, in minor units."
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["investor", "asset"], name="reinvestment_one_per_asset"),
            models.CheckConstraint(
                condition=(Q(target="market") & Q(limit_price_minor__gte=1))
                | (Q(target="primary") & Q(limit_price_minor__isnull=True)),
                name="reinvestment_limit_iff_market",
            ),
        ]

    def __str__(self):
        return f"Reinvest {self.asset} for {self.investor}"
