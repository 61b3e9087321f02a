from django.conf import settings
from django.db import models
from django.db.models import Q

from .custody import SealedKey


class ChainAccount(models.Model):
    """An Algorand account whose secret key the platform holds (sealed, see custody.py).
    Platform role accounts exist once each; investors get one custodial account each."""

    class Role(models.TextChoices):
        TREASURY = "treasury", "Issuer treasury"
        MANAGER = "manager", "Manager"
        FREEZE = "freeze", "Freeze"
        CLAWBACK = "clawback", "Clawback (transfer agent)"
        FUNDING = "funding", "Funding"
        INVESTOR = "investor", "Investor (custodial)"

    address = models.CharField(max_length=58, unique=True)
    role = models.CharField(max_length=16, choices=Role.choices, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="chain_accounts",
    )
    # Envelope encryption: the secret key encrypted under a per-row data key, the data
    # key wrapped by the master key `key_id`. None of these is a usable secret alone.
    key_ciphertext = models.BinaryField(editable=False)
    key_nonce = models.BinaryField(editable=False)
    wrapped_data_key = models.BinaryField(editable=False)
    wrap_nonce = models.BinaryField(editable=False)
    key_id = models.CharField(max_length=64, editable=False, db_index=True)
    # Asset ids this account is known to hold on chain (opted in, its minimum balance paid),
    # learnt from a read of algod or a confirmed opt-in. Custody signs no close-out, so the
    # fact stays true; it spares a settlement the read of the receiver's account. A wrong
    # entry costs one rejected group and a fallback read, never a wrong transfer.
    opted_in_asset_ids = models.JSONField(default=list, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["role", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["user"], condition=Q(user__isnull=False), name="chain_account_one_per_user"
            ),
            models.UniqueConstraint(
                fields=["role"], condition=~Q(role="investor"), name="chain_account_one_per_platform_role"
            ),
            models.CheckConstraint(
                condition=Q(role="investor", user__isnull=False) | (~Q(role="investor") & Q(user__isnull=True)),
                name="chain_account_user_iff_investor",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_role_display()} {self.address}"

    def __repr__(self) -> str:
        return f"<ChainAccount {self.role} {self.address}>"

    @property
    def sealed_key(self) -> SealedKey:
        return SealedKey(
            key_id=self.key_id,
            wrapped_data_key=bytes(self.wrapped_data_key),
            wrap_nonce=bytes(self.wrap_nonce),
            key_ciphertext=bytes(self.key_ciphertext),
            key_nonce=bytes(self.key_nonce),
        )

    def set_sealed_key(self, sealed: SealedKey) -> None:
        self.key_id = sealed.key_id
        self.wrapped_data_key = sealed.wrapped_data_key
        self.wrap_nonce = sealed.wrap_nonce
        self.key_ciphertext = sealed.key_ciphertext
        self.key_nonce = sealed.key_nonce


class ChainTransaction(models.Model):
    """Outbox row: one on-chain effect the business asked for, and its progress.

    pending   → nothing signed yet for the current generation (or waiting to re-sign)
    submitted → signed bytes and txid stored (before they were sent); may be in flight
    confirmed → in a block (confirmed_round); on_confirmed ran in the same transaction
    failed    → algod rejected it for a reason retrying cannot fix, or the before_sign
                hook refused to sign it (last_error)
    """

    class Kind(models.TextChoices):
        ASSET_CREATE = "asset_create", "Asset creation"
        ASSET_TRANSFER = "asset_transfer", "Asset transfer (settlement)"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SUBMITTED = "submitted", "Submitted"
        CONFIRMED = "confirmed", "Confirmed"
        FAILED = "failed", "Failed"

    kind = models.CharField(max_length=32, choices=Kind.choices)
    payload = models.JSONField()
    # Unique and indexed through Meta (a constraint and an index), not unique=/db_index=:
    # on PostgreSQL those add a second, pattern-matching (LIKE) index per column that no
    # query uses and every write of a row must update (see Meta).
    idempotency_key = models.CharField(max_length=200)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    # Bumped only after the stored transaction's last valid round passed unconfirmed;
    # the lease (lx) is derived from idempotency_key + generation.
    generation = models.PositiveIntegerField(default=0)
    txid = models.CharField(max_length=52, blank=True)
    group_txids = models.JSONField(default=list, blank=True)
    # Every txid of this row's leased transaction signed in the current generation: the
    # version in a batch and, after algod rejected that batch, the row's own single. All
    # carry the same lease and validity window, so at most one of them can ever confirm.
    lease_txids = models.JSONField(default=list, blank=True)
    signed_bytes = models.BinaryField(null=True, blank=True, editable=False)
    first_valid_round = models.BigIntegerField(null=True, blank=True)
    last_valid_round = models.BigIntegerField(null=True, blank=True)
    confirmed_round = models.BigIntegerField(null=True, blank=True)
    asset_id = models.BigIntegerField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    on_confirmed = models.CharField(max_length=200, blank=True)
    on_failed = models.CharField(max_length=200, blank=True)
    # Dotted path called with the row just before each generation is signed; it raises
    # chain.services.SigningRefused to stop the row for good (e.g. compliance re-check).
    before_sign = models.CharField(max_length=200, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # A worker carrying this row in a batch (chain/worker.py) until then; the row's own
    # task leaves it alone meanwhile. Only spares duplicate work: safety does not rest on it.
    claimed_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        # Four indexes, each used: the rows are written three or four times on their way
        # (signed, claimed, confirmed) and each write that moves a row updates every index.
        # Status alone is served by the sweep index's first column.
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="chain_tx_sweep_idx"),
            models.Index(fields=["txid"], name="chain_tx_txid_idx"),
        ]
        constraints = [models.UniqueConstraint(fields=["idempotency_key"], name="chain_tx_idempotency_key_unique")]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk} ({self.status})"

    @property
    def is_final(self) -> bool:
        return self.status in (self.Status.CONFIRMED, self.Status.FAILED)
