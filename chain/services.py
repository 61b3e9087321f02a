"""Writes of the chain app: custodial accounts and the transaction outbox.

Other apps use exactly three things from here: `investor_account_get_or_create`,
`platform_account` and `outbox_request` (plus `outbox_retry` for staff). They learn the
outcome from the ChainTransaction row's status and from their on_confirmed/on_failed
callbacks; they never call algod.

Exactly-once, the way `outbox_process` (run by the Celery worker) keeps it:
1. Sign once per generation. The signed bytes, txid and last valid round are stored
   with a conditional update (`generation=g, signed_bytes IS NULL`) *before* sending,
   so two workers racing on one row end up sending the same bytes.
2. Before (re)sending stored bytes, ask algod whether that txid is confirmed; "already
   in ledger" counts as success. Resending identical bytes cannot apply twice.
3. Re-sign (generation + 1, new lease) only once the node's round is past the stored
   last valid round and the txid is not confirmed: the old bytes can never apply then.
4. Mark confirmed/failed with a conditional update from an unfinished status, and run the
   caller's callback in that same database transaction.

Before a generation is signed, the caller's `before_sign` hook (if any) runs with the row:
the last word of the business (the compliance engine, for settlements) before a key is
used. It raises `SigningRefused` to fail the row for good without signing anything.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import random
import time
from dataclasses import dataclass

from algosdk import account as algo_account
from algosdk import encoding as algo_encoding
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.module_loading import import_string

from . import builder, custody, gateway
from .models import ChainAccount, ChainTransaction
from .selectors import (
    ChainNotBootstrapped,
    PLATFORM_ROLES,
    chain_transactions_stale,
    platform_account,
)

logger = logging.getLogger("chain.outbox")

__all__ = [
    "ChainNotBootstrapped",
    "SigningRefused",
    "chain_account_create",
    "investor_account_get_or_create",
    "outbox_process",
    "outbox_request",
    "outbox_retry",
    "outbox_sweep",
    "platform_account",
    "platform_accounts_ensure",
    "chain_account_keys_rotate",
]

Status = ChainTransaction.Status
UNFINISHED = [Status.PENDING, Status.SUBMITTED]


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
                account.set_sealed_key(custody.rewrap(address=account.address, sealed=account.sealed_key, backend=backend))
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
        for name, address in zip(("sender", "receiver"), addresses):
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


class SigningRefused(Exception):
    """Raised by a before_sign hook: do not sign this row, fail it with this reason."""


def _validate_callback(path: str | None, *, field: str = "on_confirmed") -> str:
    if not path:
        return ""
    try:
        import_string(path)
    except ImportError as exc:
        raise ValidationError({field: f"cannot import callback {path!r}: {exc}"}) from None
    return path


def outbox_request(*, kind: str, payload: dict, idempotency_key: str, on_confirmed: str | None = None,
                   on_failed: str | None = None, before_sign: str | None = None,
                   accounts: tuple[ChainAccount, ...] = ()) -> ChainTransaction:
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
        kind=kind, payload=payload, idempotency_key=idempotency_key,
        on_confirmed=_validate_callback(on_confirmed), on_failed=_validate_callback(on_failed, field="on_failed"),
        before_sign=_validate_callback(before_sign, field="before_sign"), next_attempt_at=timezone.now(),
    )
    row.full_clean(validate_unique=False)  # the unique index decides, race-free
    try:
        with transaction.atomic():
            row.save(force_insert=True)
    except IntegrityError:  # the same request again (or a concurrent twin that committed first)
        existing = ChainTransaction.objects.get(idempotency_key=idempotency_key)
        if existing.kind != kind or existing.payload != payload:
            raise ValidationError({"idempotency_key": "already used for a different chain request"}) from None
        return existing
    _enqueue_on_commit(row.pk)
    return row


def _enqueue_on_commit(pk: int) -> None:
    from .tasks import outbox_process_task

    # robust: the business commit stands even if the broker is down; the sweeper
    # picks the row up later.
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
    row.first_valid_round = row.last_valid_round = None
    row.failed_at = None
    row.next_attempt_at = now
    row.last_error = f"retried by {actor} at {now:%Y-%m-%d %H:%M:%S}Z; previous error: {row.last_error}"[:4000]
    row.save()
    logger.info("chain tx %s retried by %s", row.pk, actor)
    _enqueue_on_commit(row.pk)
    return row


def outbox_sweep() -> int:
    """Re-enqueue unfinished rows whose next attempt is overdue (lost message, dead
    worker). Each row is claimed with a conditional update so it is sent once a sweep."""
    from .tasks import outbox_process_task

    now = timezone.now()
    stale_before = now - timezone.timedelta(seconds=settings.CHAIN_OUTBOX_STALE_SECONDS)
    swept = 0
    for pk, due in chain_transactions_stale(before=stale_before).values_list("pk", "next_attempt_at")[:1000]:
        if ChainTransaction.objects.filter(pk=pk, next_attempt_at=due, status__in=UNFINISHED).update(next_attempt_at=now):
            outbox_process_task.delay(pk)
            swept += 1
    if swept:
        logger.warning("outbox sweeper re-enqueued %d chain transaction(s)", swept)
    return swept


# -- outbox: processing (worker only) ----------------------------------------------------

@dataclass(frozen=True)
class Outcome:
    status: str
    retry_in: float | None = None


class _Retry(Exception):
    def __init__(self, message: str, *, delay: float | None = None):
        super().__init__(message)
        self.delay = delay


class _Fail(Exception):
    pass


def backoff_seconds(attempt: int) -> float:
    """Exponential backoff with equal jitter, capped."""
    ceiling = min(settings.CHAIN_RETRY_MAX_SECONDS, settings.CHAIN_RETRY_BASE_SECONDS * 2 ** max(0, attempt - 1))
    return ceiling / 2 + random.uniform(0, ceiling / 2)


def outbox_process(*, chain_tx_id: int) -> Outcome:
    """Advance one outbox row as far as it can go now. Safe to run any number of times,
    concurrently, at any point after a crash."""
    row = _attempt_begin(chain_tx_id)
    if row is None:
        status = ChainTransaction.objects.filter(pk=chain_tx_id).values_list("status", flat=True).first()
        return Outcome(status or "missing")
    try:
        with custody.signing_session():
            return _advance(row)
    except _Retry as exc:
        delay = exc.delay if exc.delay is not None else backoff_seconds(row.attempts)
        _note_retry(row, str(exc), delay)
        return Outcome(row.status, retry_in=delay)
    except (gateway.AlgodRetryable, ImproperlyConfigured, ChainNotBootstrapped) as exc:
        delay = backoff_seconds(row.attempts)
        _note_retry(row, _reason(exc), delay)
        return Outcome(row.status, retry_in=delay)
    except (gateway.AlgodRejected, custody.CustodyError, _Fail) as exc:
        return _fail(row, _reason(exc))


def _attempt_begin(chain_tx_id: int) -> ChainTransaction | None:
    """Count an attempt on an unfinished row and load it, in one round trip
    (UPDATE ... RETURNING). None when the row is missing or already final."""
    table = connection.ops.quote_name(ChainTransaction._meta.db_table)
    rows = list(ChainTransaction.objects.raw(
        f"UPDATE {table} SET attempts = attempts + 1, next_attempt_at = %s "
        f"WHERE id = %s AND status IN (%s, %s) RETURNING *",
        [timezone.now(), chain_tx_id, *(status.value for status in UNFINISHED)],
    ))
    return rows[0] if rows else None


def _reason(exc: BaseException) -> str:
    if isinstance(exc, gateway.AlgodError):
        kind = "algod unavailable" if exc.retryable else "algod rejected"
        return f"{kind}: {exc.message}"
    if isinstance(exc, custody.CustodyError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}" if not isinstance(exc, (_Fail, _Retry)) else str(exc)


def _note_retry(row: ChainTransaction, reason: str, delay: float) -> None:
    logger.warning("chain tx %s attempt %s will retry in %.1fs: %s", row.pk, row.attempts, delay, reason)
    ChainTransaction.objects.filter(pk=row.pk, status__in=UNFINISHED).update(
        last_error=reason[:4000], next_attempt_at=timezone.now() + timezone.timedelta(seconds=delay)
    )


def _advance(row: ChainTransaction, *, depth: int = 0) -> Outcome:
    if depth > 2:
        raise _Retry("row changed under us repeatedly; trying again later")
    if row.signed_bytes is None:
        row = _sign_and_store(row)
        if row.is_final:
            return Outcome(row.status)
        if row.signed_bytes is None:
            return _advance(row, depth=depth + 1)
        fresh = True
    else:
        fresh = False

    if not fresh:
        info = gateway.pending_info(row.txid)
        if info and info.get("confirmed-round"):
            return _confirm(row, info)

    try:
        gateway.submit(bytes(row.signed_bytes))
    except gateway.AlreadyInLedger:
        logger.info("chain tx %s txid %s already in ledger", row.pk, row.txid)
        return _confirm(row, gateway.pending_info(row.txid) or _ledger_evidence(row))
    except gateway.TxnDead as exc:
        return _handle_dead(row, exc, depth)
    except gateway.AlgodRejected as exc:
        if "overlapping lease" in exc.message.lower():
            # Another signed version holding our lease is alive: wait for it to confirm or expire.
            raise _Retry(f"algod: {exc.message}") from None
        raise
    logger.info("chain tx %s submitted txid=%s lv=%s", row.pk, row.txid, row.last_valid_round)

    if settings.CHAIN_PAUSE_AFTER_SUBMIT_SECONDS:
        time.sleep(settings.CHAIN_PAUSE_AFTER_SUBMIT_SECONDS)

    info = gateway.wait_for_confirmation(row.txid, rounds=settings.CHAIN_CONFIRMATION_WAIT_ROUNDS)
    if info:
        return _confirm(row, info)
    raise _Retry(f"txid {row.txid} not confirmed yet", delay=min(5.0, settings.CHAIN_RETRY_MAX_SECONDS))


def _ledger_evidence(row: ChainTransaction) -> dict:
    """Algod said the txid is in the ledger but no longer reports its details (pending
    info is short-lived on real nodes). Success either way; for a creation find the asset
    among the treasury's created assets by its metadata hash."""
    info: dict = {"confirmed-round": None}
    if row.kind == ChainTransaction.Kind.ASSET_CREATE:
        treasury = platform_account(ChainAccount.Role.TREASURY)
        wanted = base64.b64encode(bytes.fromhex(row.payload["metadata_hash"])).decode() if row.payload.get("metadata_hash") else None
        for created in gateway.account_info(treasury.address).get("created-assets", []) or []:
            params = created.get("params", {})
            if params.get("metadata-hash") == wanted and params.get("unit-name") == row.payload["unit_name"]:
                info["asset-index"] = created["index"]
    return info


def _handle_dead(row: ChainTransaction, exc: gateway.TxnDead, depth: int) -> Outcome:
    gateway.forget_suggested_params()
    current = gateway.last_round()
    if row.last_valid_round is not None and current > row.last_valid_round:
        info = gateway.pending_info(row.txid)
        if info and info.get("confirmed-round"):
            return _confirm(row, info)
        # The stored bytes can never apply now: sign a new generation.
        updated = ChainTransaction.objects.filter(
            pk=row.pk, generation=row.generation, status=Status.SUBMITTED
        ).update(
            generation=F("generation") + 1, signed_bytes=None, txid="", group_txids=[], status=Status.PENDING,
            first_valid_round=None, last_valid_round=None,
            last_error=f"generation {row.generation} (txid {row.txid}) expired unconfirmed after round "
                       f"{row.last_valid_round}; re-signing",
        )
        if updated:
            logger.warning("chain tx %s txid %s expired at lv %s; re-signing", row.pk, row.txid, row.last_valid_round)
        row.refresh_from_db()
        if row.is_final:
            return Outcome(row.status)
        return _advance(row, depth=depth + 1)
    raise _Retry(f"algod: {exc.message}")


def _accounts_for(row: ChainTransaction) -> dict[str, ChainAccount]:
    """Every account the row's group needs, in one query."""
    addresses = [row.payload[n] for n in ("sender", "receiver")] if row.kind == ChainTransaction.Kind.ASSET_TRANSFER else []
    found = list(ChainAccount.objects.filter(Q(role__in=PLATFORM_ROLES) | Q(address__in=addresses)))
    roles: dict[str, ChainAccount] = {a.role: a for a in found if a.role in PLATFORM_ROLES}
    for role in PLATFORM_ROLES:
        if role not in roles:
            raise ChainNotBootstrapped(role)
    by_address = {a.address: a for a in found}
    for name, address in zip(("sender", "receiver"), addresses):
        if address not in by_address:
            raise _Fail(f"{name} {address} is not a custodial or platform account")
        roles[name] = by_address[address]
    return roles


def _build(row: ChainTransaction) -> builder.BuiltGroup:
    accounts = _accounts_for(row)
    sp = gateway.suggested_params()
    lease = builder.lease_for(row.idempotency_key, row.generation)
    validity = settings.CHAIN_TX_VALIDITY_ROUNDS
    if row.kind == ChainTransaction.Kind.ASSET_TRANSFER:
        p = row.payload
        return builder.build_asset_transfer(
            sp=sp, validity_rounds=validity, lease=lease, asset_id=int(p["asset_id"]), amount=int(p["amount"]),
            sender=accounts["sender"], receiver=accounts["receiver"], funding=accounts["funding"],
            clawback=accounts["clawback"], receiver_info=gateway.account_info(accounts["receiver"].address),
        )
    if row.kind == ChainTransaction.Kind.ASSET_CREATE:
        return builder.build_asset_create(
            sp=sp, validity_rounds=validity, lease=lease, payload=row.payload,
            treasury=accounts["treasury"], manager=accounts["manager"], freeze=accounts["freeze"],
            clawback=accounts["clawback"], funding=accounts["funding"],
            treasury_info=gateway.account_info(accounts["treasury"].address),
        )
    raise _Fail(f"unknown chain transaction kind {row.kind!r}")


def _before_sign(row: ChainTransaction) -> None:
    if not row.before_sign:
        return
    try:
        import_string(row.before_sign)(row)
    except SigningRefused as exc:
        raise _Fail(f"not signed: {exc}") from None
    except Exception as exc:  # the hook itself broke (database blip, bug): try again later
        raise _Retry(f"before_sign hook {row.before_sign} failed: {type(exc).__name__}: {exc}") from exc


def _sign_and_store(row: ChainTransaction) -> ChainTransaction:
    _before_sign(row)
    group = _build(row)
    signed = custody.sign_group([(txn, acct.sealed_key, acct.address) for txn, acct in zip(group.txns, group.signers)])
    blob = b"".join(base64.b64decode(algo_encoding.msgpack_encode(stxn)) for stxn in signed)
    txids = [txn.get_txid() for txn in group.txns]
    main = group.main
    stored = dict(
        signed_bytes=blob, txid=txids[group.main_index], group_txids=txids,
        first_valid_round=main.first_valid_round, last_valid_round=main.last_valid_round,
        status=Status.SUBMITTED, submitted_at=timezone.now(),
    )
    updated = ChainTransaction.objects.filter(
        pk=row.pk, generation=row.generation, status=Status.PENDING, signed_bytes__isnull=True,
    ).update(**stored)
    if not updated:  # another worker stored its version first: send that one
        row.refresh_from_db()
        return row
    for name, value in stored.items():
        setattr(row, name, value)
    logger.info("chain tx %s signed generation %s txid=%s (%d txns)", row.pk, row.generation, row.txid, len(txids))
    return row


def _run_callback(path: str, row: ChainTransaction) -> None:
    if path:
        import_string(path)(row)


def _confirm(row: ChainTransaction, info: dict) -> Outcome:
    now = timezone.now()
    # The conditional UPDATE is atomic on its own; a callback must share its transaction.
    scope = transaction.atomic() if row.on_confirmed else contextlib.nullcontext()
    try:
        with scope:
            result = dict(status=Status.CONFIRMED, confirmed_round=info["confirmed-round"],
                          asset_id=info.get("asset-index") or None, confirmed_at=now, last_error="")
            updated = ChainTransaction.objects.filter(pk=row.pk, txid=row.txid, status__in=UNFINISHED).update(**result)
            if updated:
                for name, value in result.items():
                    setattr(row, name, value)
                _run_callback(row.on_confirmed, row)
    except Exception as exc:  # the callback failed: keep the row unfinished, retry it
        raise _Retry(f"on_confirmed callback {row.on_confirmed} failed: {type(exc).__name__}: {exc}") from exc
    if updated:
        logger.info("chain tx %s confirmed txid=%s round=%s", row.pk, row.txid, row.confirmed_round)
    else:
        row.refresh_from_db()
    return Outcome(row.status)


def _fail(row: ChainTransaction, reason: str) -> Outcome:
    logger.error("chain tx %s failed permanently: %s", row.pk, reason)
    with transaction.atomic():
        updated = ChainTransaction.objects.filter(pk=row.pk, status__in=UNFINISHED).update(
            status=Status.FAILED, last_error=reason[:4000], failed_at=timezone.now(),
        )
        row.refresh_from_db()
        if updated:
            _run_callback(row.on_failed, row)
    return Outcome(row.status)
