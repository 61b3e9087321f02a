"""The outbox worker's state machine: what the Celery task runs for one ChainTransaction
row (`outbox_process`) and what beat's sweeper runs (`outbox_sweep`). Other apps never
call this module; they write rows through `chain.services.outbox_request` and learn the
outcome from the row and their callbacks.

Exactly-once, the way `outbox_process` keeps it:
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
from datetime import timedelta

from algosdk import encoding as algo_encoding
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.module_loading import import_string

from . import builder, custody, gateway
from .models import ChainAccount, ChainTransaction
from .selectors import PLATFORM_ROLES, ChainNotBootstrapped, chain_transactions_stale, platform_account

logger = logging.getLogger("chain.outbox")

Status = ChainTransaction.Status
UNFINISHED = [Status.PENDING, Status.SUBMITTED]


class SigningRefused(Exception):
    """Raised by a before_sign hook: do not sign this row, fail it with this reason.
    (Callers import it from chain.services, the outbox's public API.)"""


def settlement_queue_depth() -> int | None:
    """Messages waiting in the queue the outbox tasks go to (not those a worker holds),
    or None when the broker cannot say."""
    from .tasks import outbox_process_task

    app = outbox_process_task.app
    queue = getattr(outbox_process_task, "queue", None) or app.conf.task_default_queue
    try:
        with app.connection_for_read() as conn:
            return int(conn.default_channel.queue_declare(queue=queue, passive=True).message_count)
    except Exception as exc:  # noqa: BLE001 - a broker that cannot answer must not stop the sweep
        logger.warning("could not read the depth of queue %s: %s", queue, exc)
        return None


def outbox_sweep() -> int:
    """Re-enqueue unfinished rows whose next attempt is overdue (lost message, dead
    worker). Each row is claimed with a conditional update so it is sent once a sweep.

    An overdue row may also just be waiting in a long queue (after an outage the backlog
    can take longer than CHAIN_OUTBOX_STALE_SECONDS to drain); sending it again then only
    adds a duplicate, and sweeping every interval made the queue grow by hundreds of
    duplicates a sweep in the RabbitMQ chaos run. So a sweep tops the queue up to
    CHAIN_SWEEP_BATCH messages and no further: a queue that already holds that many gets
    nothing, and the rows are swept once it drains."""
    # Cycle: chain.tasks imports this module for the tasks' bodies.
    from .tasks import outbox_process_task

    now = timezone.now()
    stale_before = now - timedelta(seconds=settings.CHAIN_OUTBOX_STALE_SECONDS)
    room = settings.CHAIN_SWEEP_BATCH
    depth = settlement_queue_depth()
    if depth is not None:
        room = max(0, room - depth)
    swept = 0
    if room:
        for pk, due in chain_transactions_stale(before=stale_before).values_list("pk", "next_attempt_at")[:room]:
            if ChainTransaction.objects.filter(pk=pk, next_attempt_at=due, status__in=UNFINISHED).update(
                next_attempt_at=now
            ):
                outbox_process_task.delay(pk)
                swept += 1
    elif chain_transactions_stale(before=stale_before).exists():
        logger.warning("outbox sweeper: queue holds %s messages; overdue rows wait until it drains", depth)
    if swept:
        logger.warning("outbox sweeper re-enqueued %d chain transaction(s)", swept)
    return swept


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
    rows = list(
        ChainTransaction.objects.raw(
            f"UPDATE {table} SET attempts = attempts + 1, next_attempt_at = %s "
            f"WHERE id = %s AND status IN (%s, %s) RETURNING *",
            [timezone.now(), chain_tx_id, *(status.value for status in UNFINISHED)],
        )
    )
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
        last_error=reason[:4000], next_attempt_at=timezone.now() + timedelta(seconds=delay)
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
        wanted = (
            base64.b64encode(bytes.fromhex(row.payload["metadata_hash"])).decode()
            if row.payload.get("metadata_hash")
            else None
        )
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
        updated = ChainTransaction.objects.filter(pk=row.pk, generation=row.generation, status=Status.SUBMITTED).update(
            generation=F("generation") + 1,
            signed_bytes=None,
            txid="",
            group_txids=[],
            status=Status.PENDING,
            first_valid_round=None,
            last_valid_round=None,
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
    addresses = (
        [row.payload[n] for n in ("sender", "receiver")] if row.kind == ChainTransaction.Kind.ASSET_TRANSFER else []
    )
    found = list(ChainAccount.objects.filter(Q(role__in=PLATFORM_ROLES) | Q(address__in=addresses)))
    roles: dict[str, ChainAccount] = {a.role: a for a in found if a.role in PLATFORM_ROLES}
    for role in PLATFORM_ROLES:
        if role not in roles:
            raise ChainNotBootstrapped(role)
    by_address = {a.address: a for a in found}
    for name, address in zip(("sender", "receiver"), addresses, strict=False):
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
            sp=sp,
            validity_rounds=validity,
            lease=lease,
            asset_id=int(p["asset_id"]),
            amount=int(p["amount"]),
            sender=accounts["sender"],
            receiver=accounts["receiver"],
            funding=accounts["funding"],
            clawback=accounts["clawback"],
            receiver_info=gateway.account_info(accounts["receiver"].address),
        )
    if row.kind == ChainTransaction.Kind.ASSET_CREATE:
        return builder.build_asset_create(
            sp=sp,
            validity_rounds=validity,
            lease=lease,
            payload=row.payload,
            treasury=accounts["treasury"],
            manager=accounts["manager"],
            freeze=accounts["freeze"],
            clawback=accounts["clawback"],
            funding=accounts["funding"],
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
    signed = custody.sign_group(
        [(txn, acct.sealed_key, acct.address) for txn, acct in zip(group.txns, group.signers, strict=True)]
    )
    blob = b"".join(base64.b64decode(algo_encoding.msgpack_encode(stxn)) for stxn in signed)
    txids = [txn.get_txid() for txn in group.txns]
    main = group.main
    stored = dict(
        signed_bytes=blob,
        txid=txids[group.main_index],
        group_txids=txids,
        first_valid_round=main.first_valid_round,
        last_valid_round=main.last_valid_round,
        status=Status.SUBMITTED,
        submitted_at=timezone.now(),
    )
    updated = ChainTransaction.objects.filter(
        pk=row.pk,
        generation=row.generation,
        status=Status.PENDING,
        signed_bytes__isnull=True,
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
            result = dict(
                status=Status.CONFIRMED,
                confirmed_round=info["confirmed-round"],
                asset_id=info.get("asset-index") or None,
                confirmed_at=now,
                last_error="",
            )
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
            status=Status.FAILED,
            last_error=reason[:4000],
            failed_at=timezone.now(),
        )
        row.refresh_from_db()
        if updated:
            _run_callback(row.on_failed, row)
    return Outcome(row.status)
