"""Back office for the chain layer: read-only views of outbox rows and accounts.
Key material is never a field here (not even the ciphertext): ModelAdmin `fields` list
exactly what is shown."""

import time
from typing import ClassVar

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from chain.templatetags.chain_links import asset_link, txid_link
from config.backoffice import LargeTableAdminMixin

from . import gateway
from .models import ChainAccount, ChainTransaction
from .services import outbox_retry


class ReadOnlyAdmin(LargeTableAdminMixin, admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return False

    def get_readonly_fields(self, request: HttpRequest, obj: models.Model | None = None):
        return self.fields


@admin.register(ChainTransaction)
class ChainTransactionAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "kind",
        "status",
        "txid_round",
        "asset_id_link",
        "attempts",
        "short_error",
        "created_at",
        "updated_at",
    ]
    # No date hierarchy: its year links are a DISTINCT over every row on every view.
    list_filter = ["status", "kind", "created_at"]
    search_fields = ["txid", "idempotency_key"]
    list_per_page = 100
    fields = [
        "kind",
        "status",
        "idempotency_key",
        "payload",
        "txid_link",
        "group_txids",
        "lease_txids",
        "generation",
        "first_valid_round",
        "last_valid_round",
        "confirmed_round",
        "asset_id_link",
        "attempts",
        "last_error",
        "on_confirmed",
        "on_failed",
        "next_attempt_at",
        "claimed_until",
        "created_at",
        "updated_at",
        "submitted_at",
        "confirmed_at",
        "failed_at",
    ]
    actions = ["retry_failed"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[ChainTransaction]:
        return super().get_queryset(request).defer("signed_bytes")

    @admin.display(description="txid (round)", ordering="confirmed_round")
    def txid_round(self, obj: ChainTransaction) -> str:
        if not obj.txid:
            return "—"
        return format_html("{} ({})", txid_link(obj.txid), obj.confirmed_round or "unconfirmed")

    @admin.display(description="txid", ordering="txid")
    def txid_link(self, obj: ChainTransaction) -> str:
        return txid_link(obj.txid) if obj.txid else "—"

    @admin.display(description="asset id", ordering="asset_id")
    def asset_id_link(self, obj: ChainTransaction) -> str:
        return asset_link(obj.asset_id) if obj.asset_id else "—"

    @admin.display(description="last error")
    def short_error(self, obj: ChainTransaction) -> str:
        return (obj.last_error[:120] + "…") if len(obj.last_error) > 120 else obj.last_error

    @admin.action(description="Retry the selected failed transactions", permissions=["change"])
    def retry_failed(self, request: HttpRequest, queryset: QuerySet[ChainTransaction]) -> None:
        retried = 0
        for row in queryset.filter(status=ChainTransaction.Status.FAILED):
            try:
                outbox_retry(chain_tx=row, actor=request.user)
                retried += 1
            except ValidationError as exc:
                messages.error(request, f"#{row.pk}: {'; '.join(exc.messages)}")
        messages.success(request, f"{retried} chain transaction(s) queued again.")


@admin.register(ChainAccount)
class ChainAccountAdmin(ReadOnlyAdmin):
    # Live balances in the list for the platform's role accounts (five rows); investor
    # accounts show theirs on their own page, so a page of 50 investors is not 50 algod
    # calls. After an algod error, calls stop for BREAKER_SECONDS (a node that hangs
    # would otherwise cost the timeout once per row).
    list_display = ["address", "role", "user", "list_balance", "key_id", "created_at"]
    list_filter = ["role", "key_id"]
    search_fields = ["address", "user__email"]
    list_select_related = ["user"]
    list_per_page = 50
    fields = ["address", "role", "user", "key_id", "opted_in_asset_ids", "created_at", "live_balance", "live_assets"]
    BREAKER_SECONDS = 15.0
    _algod_failed_at: ClassVar[float | None] = None

    def get_queryset(self, request: HttpRequest) -> QuerySet[ChainAccount]:
        return super().get_queryset(request).defer("key_ciphertext", "key_nonce", "wrapped_data_key", "wrap_nonce")

    def _info(self, obj) -> dict:  # obj: a ChainAccount, which carries the answer as _algod_info
        """algod's view of the account, read once per page (kept on the instance)."""
        if not hasattr(obj, "_algod_info"):
            failed_at = self._algod_failed_at
            if failed_at is not None and time.monotonic() - failed_at < self.BREAKER_SECONDS:
                obj._algod_info = {"error": "algod did not answer a moment ago; reload to try again"}
                return obj._algod_info
            try:
                obj._algod_info = gateway.account_info(obj.address)
            except gateway.AlgodError as exc:
                type(self)._algod_failed_at = time.monotonic()
                obj._algod_info = {"error": exc.message}
        return obj._algod_info

    @admin.display(description="balance (ALGO)")
    def list_balance(self, obj: ChainAccount) -> str:
        if obj.role == ChainAccount.Role.INVESTOR:
            return "on the account's page"
        return self.live_balance(obj)

    @admin.display(description="balance (ALGO)")
    def live_balance(self, obj: ChainAccount) -> str:
        info = self._info(obj)
        if "error" in info:
            return f"unavailable: {info['error'][:80]}"
        micro = int(info.get("amount", 0))
        return f"{micro // 1_000_000:,}.{micro % 1_000_000:06d}"

    @admin.display(description="asset holdings (on chain)")
    def live_assets(self, obj: ChainAccount) -> str:
        info = self._info(obj)
        if "error" in info:
            return "unavailable"
        holdings = info.get("assets") or []
        return (
            ", ".join(
                f"ASA {h['asset-id']}: {h['amount']}{' (frozen)' if h.get('is-frozen') else ''}" for h in holdings
            )
            or "none"
        )
