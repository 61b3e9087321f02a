"""Writes of the chain app: custodial accounts and the outbox's public API. The worker's
state machine, which carries a row to the chain, is `chain/worker.py`: chain's Celery
tasks run it.

What the other apps import from chain/:
- this module: `outbox_request` (on-chain work, inside the caller's transaction),
  `outbox_retry` (staff), `investor_account_get_or_create`, and `SigningRefused` for their
  before_sign hooks;
- `chain.selectors`: accounts (`treasury_and_investor_account`, `investor_account_for_user`,
  `investor_accounts`, `platform_account`, `platform_accounts`), `ChainNotBootstrapped`
  and `asset_transfers_in_flight`;
- `chain.models`: `ChainTransaction` (the row they point to, read and lock) and
  `ChainAccount.Role`;
- `chain.gateway`: read-only algod queries (`asset_amount`, `asset_holdings`,
  `asset_params`; `algod_status` for the readiness probe) and `AlgodError`, which they
  catch. Only the gateway talks to algod.

They learn a row's outcome from its status and from their on_confirmed/on_failed
callbacks: dotted paths handed in, so chain/ never imports the apps above it.
`chain_account_create`, `platform_accounts_ensure` and `chain_account_keys_rotate` serve
chain's own bootstrap and rotate_keys commands.
"""

from __future__ import annotations

import logging

from algosdk import account as algo_account
from algosdk import encoding as algo_encoding
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from config import rows

from . import custody
from .models import ChainAccount, ChainTransaction
from .selectors import PLATFORM_ROLES, ChainNotBootstrapped, platform_account
from .tasks import outbox_process_task
from .worker import SigningRefused, wake

logger = logging.getLogger("chain.outbox")

__all__ = [
    "ChainNotBootstrapped",
    "SigningRefused",
    "chain_account_create",
    "chain_account_keys_rotate",
    "investor_account_get_or_create",
    "outbox_request",
    "outbox_retry",
    "platform_account",
    "platform_accounts_ensure",
]

Status = ChainTransaction.Status


# -- accounts --------------------------------------------------------------------------


def chain_account_create(*, role: str, user=None) -> ChainAccount:
    """Generate a keypair, seal the secret key, store the account. No on-chain effect."""
    private_key, address = algo_account.generate_account()
    account = ChainAccount(address=address, role=role, user=user)
    account.set_sealed_key(custody.seal_secret_key(address=address, private_key=private_key))
    del private_key
    account.full_clean(exclude=["key_ciphertext", "key_nonce", "wrapped_data_key", "wrap_nonce", "key_id"])
    account.save()
    logger.info("chain account created role=%s address=%s key_id=%s", role, address, account.key_id)
    return account


def investor_account_get_or_create(*, user) -> ChainAccount:
    """The user's custodial account, created (not funded, not opted in) on first call."""
    existing = ChainAccount.objects.filter(user=user).first()
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            return chain_account_create(role=ChainAccount.Role.INVESTOR, user=user)
    except IntegrityError:  # a concurrent call created it first
        return ChainAccount.objects.get(user=user)


def platform_accounts_ensure() -> list[tuple[ChainAccount, bool]]:
    """Create any missing platform role account. Idempotent."""
    result = []
    for role in PLATFORM_ROLES:
        try:
            result.append((platform_account(role), False))
        except ChainNotBootstrapped:
            try:
                with transaction.atomic():
                    result.append((chain_account_create(role=role), True))
            except IntegrityError:
                result.append((platform_account(role), False))
    return result


def chain_account_keys_rotate(*, batch_size: int = 200) -> int:
    """Re-wrap every data key not under the active master key. Safe to run while the
    platform works (each row is re-wrapped under a row lock; ciphertext unchanged)."""
    backend = custody.get_backend()
    active = backend.active_key_id()
    rotated = 0
    while True:
        ids = list(ChainAccount.objects.exclude(key_id=active).order_by("pk").values_list("pk", flat=True)[:batch_size])
        if not ids:
            return rotated
        for pk in ids:
            with transaction.atomic():
                account = ChainAccount.objects.select_for_update().get(pk=pk)
                if account.key_id == active:
                    continue
                account.set_sealed_key(
                    custody.rewrap(address=account.address, sealed=account.sealed_key, backend=backend)
                )
                account.save(update_fields=["key_id", "wrapped_data_key", "wrap_nonce"])
                rotated += 1


# -- outbox: requests ------------------------------------------------------------------


def _validate_payload(kind: str, payload: dict, accounts=()) -> None:
    errors = {}
    if kind == ChainTransaction.Kind.ASSET_TRANSFER:
        addresses = [payload.get(name) for name in ("sender", "receiver")]
        valid = [a for a in addresses if isinstance(a, str) and algo_encoding.is_valid_address(a)]
        known = {a.address for a in accounts if a.pk is not None}
        if not known.issuperset(valid):
            known = set(ChainAccount.objects.filter(address__in=valid).values_list("address", flat=True))
        for name, address in zip(("sender", "receiver"), addresses, strict=False):
            if address not in valid:
                errors[name] = "must be an Algorand address"
            elif address not in known:
                errors[name] = "must be the address of a platform or custodial account"
        for name in ("asset_id", "amount"):
            if not isinstance(payload.get(name), int) or isinstance(payload.get(name), bool) or payload[name] <= 0:
                errors[name] = "must be a positive integer"
        if payload.get("sender") and payload.get("sender") == payload.get("receiver"):
            errors["receiver"] = "must differ from the sender"
    elif kind == ChainTransaction.Kind.ASSET_CREATE:
        if not isinstance(payload.get("total"), int) or payload["total"] <= 0:
            errors["total"] = "must be a positive integer"
        if payload.get("decimals", 0) != 0:
            errors["decimals"] = "fractions are whole units: decimals must be 0"
        if not payload.get("asset_name") or len(str(payload["asset_name"]).encode()) > 32:
            errors["asset_name"] = "1 to 32 bytes"
        if not payload.get("unit_name") or len(str(payload["unit_name"]).encode()) > 8:
            errors["unit_name"] = "1 to 8 bytes"
        if len(str(payload.get("url", "")).encode()) > 96:
            errors["url"] = "at most 96 bytes"
        digest = payload.get("metadata_hash")
        if digest is not None:
            try:
                if len(bytes.fromhex(digest)) != 32:
                    raise ValueError
            except (TypeError, ValueError):
                errors["metadata_hash"] = "64 hex characters (SHA-256)"
    else:
        errors["kind"] = f"unknown kind {kind!r}"
    if errors:
        raise ValidationError(errors)


def _validate_callback(path: str | None, *, field: str = "on_confirmed") -> str:
    if not path:
        return ""
    try:
        import_string(path)
    except ImportError as exc:
        raise ValidationError({field: f"cannot import callback {path!r}: {exc}"}) from None
    return path


def outbox_request(
    *,
    kind: str,
    payload: dict,
    idempotency_key: str,
    on_confirmed: str | None = None,
    on_failed: str | None = None,
    before_sign: str | None = None,
    accounts: tuple[ChainAccount, ...] = (),
) -> ChainTransaction:
    """Ask for on-chain work. Call inside the caller's transaction.atomic(): the row is
    written with the business change and the worker is told after commit. A repeated
    idempotency_key returns the existing row (and must carry the same request).

    Hooks are dotted paths called with the row: `on_confirmed` and `on_failed` in the
    transaction that finishes it, `before_sign` before each generation is signed (raise
    `SigningRefused` there to fail the row without signing). `accounts`: the saved
    ChainAccount rows of the payload's addresses, when the caller has them (spares a read)."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("outbox_request must be called inside the caller's transaction.atomic()")
    _validate_payload(kind, payload, accounts)
    row = ChainTransaction(
        kind=kind,
        payload=payload,
        idempotency_key=idempotency_key,
        on_confirmed=_validate_callback(on_confirmed),
        on_failed=_validate_callback(on_failed, field="on_failed"),
        before_sign=_validate_callback(before_sign, field="before_sign"),
        next_attempt_at=timezone.now(),
    )
    row.full_clean(validate_unique=False, validate_constraints=False)  # the unique index decides, race-free
    if not rows.insert(row, unless_conflict_on="idempotency_key"):  # the same request again, or its twin
        existing = ChainTransaction.objects.get(idempotency_key=idempotency_key)
        if existing.kind != kind or existing.payload != payload:
            raise ValidationError({"idempotency_key": "already used for a different chain request"})
        return existing
    _enqueue_on_commit(row)
    return row


def _enqueue_on_commit(row: ChainTransaction) -> None:
    # robust: the business commit stands even if the broker is down; the sweeper
    # picks the row up later. Transfers wake their sender's worker (chain.worker.wake).
    pk = row.pk
    if row.kind == ChainTransaction.Kind.ASSET_TRANSFER:
        sender = row.payload["sender"]
        transaction.on_commit(lambda: wake(chain_tx_id=pk, sender=sender), robust=True)
    else:
        transaction.on_commit(lambda: outbox_process_task.delay(pk), robust=True)


@transaction.atomic
def outbox_retry(*, chain_tx: ChainTransaction, actor) -> ChainTransaction:
    """Staff: send a failed row again. It gets a new generation (new lease) because its
    old signed bytes were rejected and never entered a ledger."""
    row = ChainTransaction.objects.select_for_update().get(pk=chain_tx.pk)
    if row.status != Status.FAILED:
        raise ValidationError("only failed chain transactions can be retried")
    now = timezone.now()
    row.status = Status.PENDING
    row.generation += 1
    row.signed_bytes = None
    row.txid = ""
    row.group_txids = []
    row.lease_txids = []
    row.claimed_until = None
    row.first_valid_round = row.last_valid_round = None
    row.failed_at = None
    row.next_attempt_at = now
    row.last_error = f"retried by {actor} at {now:%Y-%m-%d %H:%M:%S}Z; previous error: {row.last_error}"[:4000]
    row.save()
    logger.info("chain tx %s retried by %s", row.pk, actor)
    _enqueue_on_commit(row)
    return row
