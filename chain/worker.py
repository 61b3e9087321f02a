"""The outbox worker's state machine: what the Celery task runs for one ChainTransaction
row (`outbox_process`) and what beat's sweeper runs (`outbox_sweep`). Other apps never
call this module; they write rows through `chain.services.outbox_request` and learn the
outcome from the row and their callbacks.

Exactly-once, the way `outbox_process` keeps it (docs/chain.md has the argument):
1. Sign once per version. The signed bytes, txid and last valid round are stored with a
   conditional update (`generation=g, signed_bytes IS NULL`; for a batch, every member in
   one transaction or none) *before* sending, so two workers racing on one row end up
   sending the same bytes.
2. Before (re)sending stored bytes, ask algod whether any version of this generation is
   confirmed; "already in ledger" counts as success. Resending identical bytes cannot
   apply twice.
3. Every version of one generation carries the same lease (lx) and validity window, so at
   most one of them can confirm. A second version is signed only after algod rejected
   (or dropped) the first (a batch rejected for one member: each member again on its
   own, the receiver's account read afresh); only the second's rejection fails a row.
4. Re-sign with generation + 1 (new lease) only once the node's round is past the stored
   last valid round and no version of the generation is confirmed: none can apply then.
5. Mark confirmed/failed with a conditional update from an unfinished status, and run the
   caller's callback in that same database transaction, per row.

Batches: a task for a ready asset transfer whose receiver the books know to hold the
asset claims up to 14 more such rows from the same sender (other receivers, known too),
`SELECT ... FOR UPDATE SKIP LOCKED` then `claimed_until`, and settles them in one atomic
group of at most 16 transactions. The claimed rows' own tasks find them taken and return.

Waking the workers (`wake`): a committed transfer sends its own task only when no wake for
its sender is waiting (a cache key, `cache.add`); otherwise it is left to the waiting one.
A woken run clears the key *before* it reads rows, so every transfer committed while the
key stood is visible to it, notes the last row id, and once its claim has committed hands
the sender on: a task for the first ready row after its own that no batch claims (its own
batch's rows are claimed by then), up to that id. Under load a backlog from one
sender costs one message per batch instead of one per row; rows arriving one at a time
still get one message each. A lost wake (the key stands, its message does not) only
delays rows until the key expires (CHAIN_WAKE_SECONDS) or the sweeper finds them.

Before a generation is signed, the caller's `before_sign` hook (if any) runs with the row,
once per row, in a batch too: the last word of the business (the compliance engine, for
settlements) before a key is used. It raises `SigningRefused` to fail the row for good
without signing. A second version of the same generation is the same settlement sent
again and is not checked again (its first version may still be the one that confirms).
"""

from __future__ import annotations

import base64
import logging
import math
import random
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import timedelta
from functools import reduce
from operator import or_

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, transaction
from django.db.models import F, Field, Max, Q
from django.utils import timezone
from django.utils.module_loading import import_string

from config import rows

from . import builder, custody, gateway
from .models import ChainAccount, ChainTransaction
from .selectors import PLATFORM_ROLES, ChainNotBootstrapped, chain_transactions_stale, platform_account

logger = logging.getLogger("chain.outbox")

Status = ChainTransaction.Status
Kind = ChainTransaction.Kind
UNFINISHED = [Status.PENDING, Status.SUBMITTED]
SKIPPED = "skipped"  # the outcome of a task whose row was final, missing or in a batch


class _Memo:
    """What this worker process knows without asking the database: rows it confirmed
    (for ever) and rows one of its threads carries in a batch (until the claim expires).
    The rows' own tasks, delivered to the same process (the threads pool), return on it
    at no cost; a task in another process asks the database (`claimed_until`). Only ever
    skips work that is done or taken, so forgetting (bounded size) is harmless."""

    SIZE = 20_000

    def __init__(self) -> None:
        self._until: OrderedDict[int, float] = OrderedDict()
        self._lock = threading.Lock()

    def taken(self, pk: int) -> bool:
        with self._lock:
            return self._until.get(pk, 0.0) > time.monotonic()

    def hold(self, pks, *, seconds: float = math.inf) -> None:
        until = time.monotonic() + seconds
        with self._lock:
            for pk in pks:
                self._until[pk] = until
                self._until.move_to_end(pk)
            while len(self._until) > self.SIZE:
                self._until.popitem(last=False)

    def forget(self, pks) -> None:
        with self._lock:
            for pk in pks:
                self._until.pop(pk, None)

    def clear(self) -> None:
        with self._lock:
            self._until.clear()


memo = _Memo()

# A batch: the fee payer and up to 15 clawback transfers (the protocol's 16).
BATCH_MAX_MEMBERS = builder.MAX_GROUP_SIZE - 1
# Rows a batch looks at (and locks, SKIP LOCKED, for one short transaction) to pick its
# members: twice the members, as some share a receiver or are not known to hold the asset.
BATCH_CANDIDATES = 2 * BATCH_MAX_MEMBERS
# How long the rows' own tasks leave a claimed row to the batch's worker. Longer than a
# batch takes (sign, send, wait CHAIN_CONFIRMATION_WAIT_ROUNDS); a worker that dies
# holding a claim only delays its rows by this much (then the sweeper sends them again).
BATCH_CLAIM_SECONDS = 30.0
# A woken run with a backlog hands this many batches' worth of it to tasks of their own
# before it claims (`_Handoff.split`): as many as a worker runs side by side by default.
HANDOFF_SPLIT_BATCHES = 4


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


def _wake_key(sender: str) -> str:
    return f"chain:outbox:wake:{sender}"


def wake(*, chain_tx_id: int, sender: str) -> bool:
    """After a transfer from `sender` committed: send its task unless a wake for that
    sender is already waiting whose run will reach this row (a wake for a lower row id).
    True when a task was sent.
    A cache that cannot answer sends the task (a duplicate costs one skipped message)."""
    from .tasks import outbox_process_task  # cycle: chain.tasks imports this module

    key = _wake_key(sender)
    alone = False
    try:
        if not cache.add(key, chain_tx_id, timeout=settings.CHAIN_WAKE_SECONDS):
            # A wake waits: its run reads rows after clearing the key and hands on the rows
            # *after its own*. Ids are taken at insert, not at commit, so a row committed
            # after a later-numbered one woke the worker is below that wake: it sends its
            # own task, for itself alone (the waiting wake keeps the rest). So does a row
            # that finds the key gone meanwhile (whose run cleared it is not known).
            waiting = cache.get(key)
            if waiting is not None and int(waiting) < chain_tx_id:
                return False
            alone = True
    except Exception as exc:  # noqa: BLE001 - the cache is an optimisation here
        logger.warning("outbox wake: cache unavailable (%s); sending the task", exc)
    if alone:
        outbox_process_task.delay(chain_tx_id)
        return True
    try:
        outbox_process_task.delay(chain_tx_id, sender=sender)
    except BaseException:
        _wake_clear(sender)  # nothing is on its way: let the next commit send one
        raise
    return True


def _wake_clear(sender: str) -> None:
    try:
        cache.delete(_wake_key(sender))
    except Exception as exc:  # noqa: BLE001 - the key then expires on its own
        logger.warning("outbox wake: could not clear the wake of %s: %s", sender, exc)


def queue_purge() -> int:
    """Drop every message waiting in the broker (tests, benches, an operator clearing a
    poisoned queue) and forget the wakes they carried, so the next transfer from each
    sender sends one again. Rows are untouched; the sweeper finds the unfinished ones."""
    from .tasks import outbox_process_task  # cycle: chain.tasks imports this module

    purged = outbox_process_task.app.control.purge()
    addresses = list(ChainAccount.objects.values_list("address", flat=True))
    for start in range(0, len(addresses), 1000):
        try:
            cache.delete_many([_wake_key(address) for address in addresses[start : start + 1000]])
        except Exception as exc:  # noqa: BLE001 - the keys then expire on their own
            logger.warning("outbox wake: could not forget the wakes: %s", exc)
            break
    return purged


@dataclass
class _Handoff:
    """A woken run's duty: see that a task reaches the sender's ready transfers after row
    `after` up to row `upto` (the last row id when the wake was cleared: every transfer
    the wake held back is among them; later ones sent their own). A run shares a long
    duty out before it claims (`split`), then passes what is left of its own share on
    once, to the next such row, so every chain of hand-offs moves forward and ends."""

    sender: str
    after: int
    upto: int
    done: bool = False

    def owes(self, chain_tx_id: int) -> bool:
        return self.after < chain_tx_id <= self.upto

    def split(self) -> None:
        """Hand later batches' worth of the duty to tasks of their own at once, so they are
        claimed, signed and sent side by side instead of one after another (a chain of
        hand-offs is as slow as its hops: message, attempt, claim, read). Reads the first
        HANDOFF_SPLIT_BATCHES batches' worth of ready rows after this run's; the row after
        each full batch's worth leads a share of its own, up to the next share (the last:
        up to `upto`, to split again); this run keeps the rows before the first."""
        if self.done:
            return
        ids = _ready_after(self, limit=HANDOFF_SPLIT_BATCHES * BATCH_MAX_MEMBERS - 1)
        leaders = ids[BATCH_MAX_MEMBERS - 1 :: BATCH_MAX_MEMBERS]  # this run's row + 14, then every 15th
        if not leaders:
            return
        ends = [leader - 1 for leader in leaders[1:]] + [self.upto]
        for leader, end in zip(leaders, ends, strict=True):
            _send_on_commit(leader, sender=self.sender, upto=end)
        self.upto = leaders[0] - 1

    def to(self, chain_tx_id: int | None) -> None:
        """Hand on to this row (None: there is none) once the current transaction commits."""
        if self.done:
            return
        self.done = True
        if chain_tx_id is not None and self.owes(chain_tx_id):
            _send_on_commit(chain_tx_id, sender=self.sender, upto=self.upto)

    def finish(self) -> None:
        """Hand on to the first ready row after the run's own that no batch claims (this
        run's batch is claimed by then), if not done yet."""
        if not self.done:
            found = _ready_after(self, limit=1)
            self.to(found[0] if found else None)


def _send_on_commit(chain_tx_id: int, *, sender: str, upto: int) -> None:
    from .tasks import outbox_process_task  # cycle: chain.tasks imports this module

    args, kwargs = (chain_tx_id,), {"sender": sender, "upto": upto}
    transaction.on_commit(lambda: outbox_process_task.apply_async(args, kwargs), robust=True)


def _ready_after(handoff: _Handoff, *, limit: int) -> list[int]:
    """The first `limit` ready transfers of the duty, by id: a plain read (not the claim's
    SKIP LOCKED one), so a row another worker is picking is not skipped."""
    with connection.cursor() as cursor:
        cursor.execute(_HANDOFF_SQL, [handoff.after, handoff.upto, *_ready_params(handoff.sender, _db_now()), limit])
        return [found[0] for found in cursor.fetchall()]


# Transfers from a sender that wait for a worker now: pending, due, and not claimed.
# Written out for the two reads of the outbox every batch makes (the claim, the hand-off):
# the ORM built and compiled them anew each time (py-spy on bench/settlement's worker).
# `->>` reads a JSON key as text on PostgreSQL and SQLite (3.38+) alike.
_TABLE = ChainTransaction._meta.db_table
_UNCLAIMED_SQL = "status = %s AND (claimed_until IS NULL OR claimed_until < %s)"
_READY_SQL = f"kind = %s AND payload ->> 'sender' = %s AND next_attempt_at <= %s AND {_UNCLAIMED_SQL}"


_HANDOFF_SQL = (
    f"SELECT id FROM {_TABLE} WHERE id > %s AND id <= %s AND signed_bytes IS NULL AND {_READY_SQL} ORDER BY id LIMIT %s"
)


def _db_now():
    """Now, as the database compares it with the rows' timestamps (SQLite stores text)."""
    return connection.ops.adapt_datetimefield_value(timezone.now())


def _unclaimed_params(at) -> list:
    return [Status.PENDING.value, at]


def _ready_params(sender: str, at) -> list:
    return [Kind.ASSET_TRANSFER.value, sender, at, *_unclaimed_params(at)]


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


class _Taken(Exception):
    """Another worker's batch carries this row now: leave it to that worker."""


@dataclass
class _Work:
    """What one task's run holds beyond its own row: the rows it claimed for a batch
    (released when the run ends with any of them unfinished) and the rows that share
    the version it signed, as (row, its leased txid)."""

    row: ChainTransaction
    handoff: _Handoff | None = None
    claimed: list[int] = field(default_factory=list)
    members: list[tuple[ChainTransaction, str]] | None = None
    learnt: list[tuple[ChainAccount, int]] = field(default_factory=list)
    finished: bool = False

    def release(self, *, countdown: float | None = None) -> None:
        """Unclaim rows this run could not finish and send their own tasks again (those
        returned when they found the rows claimed). The run's own row retries itself."""
        if not self.claimed or self.finished:
            return
        from .tasks import outbox_process_task  # cycle: chain.tasks imports this module

        memo.forget(self.claimed)
        ChainTransaction.objects.filter(pk__in=self.claimed, claimed_until__isnull=False).update(claimed_until=None)
        for pk in self.claimed:
            if pk != self.row.pk:
                outbox_process_task.apply_async((pk,), countdown=countdown)
        self.claimed = []


def backoff_seconds(attempt: int) -> float:
    """Exponential backoff with equal jitter, capped."""
    ceiling = min(settings.CHAIN_RETRY_MAX_SECONDS, settings.CHAIN_RETRY_BASE_SECONDS * 2 ** max(0, attempt - 1))
    return ceiling / 2 + random.uniform(0, ceiling / 2)


def outbox_process(*, chain_tx_id: int, sender: str | None = None, upto: int | None = None) -> Outcome:
    """Advance one outbox row (and the rows of its batch) as far as it can go now. Safe to
    run any number of times, concurrently, at any point after a crash. `sender`: the run
    was woken for that sender's transfers (`wake`), or handed them on to `upto`, and
    hands them on in turn."""
    if sender is None:
        return _process(chain_tx_id, None)
    if upto is None:  # a wake: clear it before reading rows, so what it held back is visible
        _wake_clear(sender)
        upto = ChainTransaction.objects.aggregate(last=Max("pk"))["last"] or chain_tx_id
    handoff = _Handoff(sender, after=chain_tx_id, upto=upto)
    try:
        return _process(chain_tx_id, handoff)
    finally:
        handoff.finish()


def _process(chain_tx_id: int, handoff: _Handoff | None) -> Outcome:
    if memo.taken(chain_tx_id):  # confirmed, or in a batch this process carries
        return Outcome(SKIPPED)
    row = _attempt_begin(chain_tx_id)
    if row is None:  # final, missing, or carried by a batch: one statement and done
        return Outcome(SKIPPED)
    work = _Work(row, handoff)
    delay: float | None = None
    try:
        with custody.signing_session():
            return _advance(row, work)
    except _Taken:
        return Outcome(row.status)
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
    finally:
        work.release(countdown=delay)


def _attempt_begin(chain_tx_id: int) -> ChainTransaction | None:
    """Count an attempt on an unfinished row that no batch claims and load it, in one
    round trip (UPDATE ... RETURNING). None when the row is missing, final or claimed."""
    at = _db_now()
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {_TABLE} SET attempts = attempts + 1, next_attempt_at = %s WHERE id = %s AND status IN (%s, %s) "
            f"AND (claimed_until IS NULL OR claimed_until < %s) RETURNING {rows.columns(ChainTransaction, connection)}",
            [at, chain_tx_id, *(status.value for status in UNFINISHED), at],
        )
        found = rows.load(ChainTransaction, connection, cursor.fetchall())
    return found[0] if found else None


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
        last_error=reason[:4000], next_attempt_at=timezone.now() + timedelta(seconds=delay), claimed_until=None
    )


def _advance(row: ChainTransaction, work: _Work, *, depth: int = 0) -> Outcome:
    if depth > 2:
        raise _Retry("row changed under us repeatedly; trying again later")
    if row.signed_bytes is None:
        row = _sign_and_store(row, work)
        if row.is_final:
            return Outcome(row.status)
        if row.signed_bytes is None:
            return _advance(row, work, depth=depth + 1)
        fresh = work.members is not None
    else:
        fresh = False

    if not fresh:
        confirmed = _confirmed_version(row)
        if confirmed:
            return _confirm(row, work, *confirmed)

    try:
        gateway.submit(bytes(row.signed_bytes))
    except gateway.AlreadyInLedger:
        logger.info("chain tx %s txid %s already in ledger", row.pk, row.txid)
        return _confirm(row, work, row.txid, gateway.pending_info(row.txid) or _ledger_evidence(row))
    except gateway.TxnDead as exc:
        return _handle_dead(row, work, exc, depth)
    except gateway.AlgodRejected as exc:
        if "overlapping lease" in exc.message.lower():
            # Another version holding our lease is alive or confirmed: ours can never apply.
            confirmed = _confirmed_version(row)
            if confirmed:
                return _confirm(row, work, *confirmed)
            raise _Retry(f"algod: {exc.message}") from None
        return _rejected(row, work, exc, depth)
    logger.info("chain tx %s submitted txid=%s lv=%s", row.pk, row.txid, row.last_valid_round)

    if settings.CHAIN_PAUSE_AFTER_SUBMIT_SECONDS:
        time.sleep(settings.CHAIN_PAUSE_AFTER_SUBMIT_SECONDS)

    try:
        info = gateway.wait_for_confirmation(row.txid, rounds=settings.CHAIN_CONFIRMATION_WAIT_ROUNDS)
    except gateway.AlgodRejected as exc:  # the node dropped it from its pool
        return _rejected(row, work, exc, depth)
    if info:
        return _confirm(row, work, row.txid, info)
    raise _Retry(f"txid {row.txid} not confirmed yet", delay=min(5.0, settings.CHAIN_RETRY_MAX_SECONDS))


def _rejected(row: ChainTransaction, work: _Work, exc: gateway.AlgodRejected, depth: int) -> Outcome:
    """Algod refused the row's version. A first version (perhaps a batch, perhaps built
    from the books) gets a second one, alone; a row fails only on its own version's
    rejection, so it never fails while bytes it shares with other rows may still be sent."""
    if _may_send_alone(row):
        row = _send_alone(row, work, exc)
        return _advance(row, work, depth=depth + 1)
    raise exc


def _versions(row: ChainTransaction) -> list[str]:
    """Every leased txid signed for the row's current generation (rows signed before
    versions were recorded have only their txid)."""
    return list(row.lease_txids or ([row.txid] if row.txid else []))


def _confirmed_version(row: ChainTransaction) -> tuple[str, dict] | None:
    for txid in _versions(row):
        info = gateway.pending_info(txid)
        if info and info.get("confirmed-round"):
            return txid, info
    return None


def _members(row: ChainTransaction, work: _Work) -> list[tuple[ChainTransaction, str]]:
    """The rows whose leased transaction is in the group of the row's stored version:
    the batch, or the row alone."""
    if work.members is not None and any(m.pk == row.pk and t == row.txid for m, t in work.members):
        return work.members
    members = [(row, row.txid)]
    if row.kind == Kind.ASSET_TRANSFER and len(row.group_txids) > 2:
        others = ChainTransaction.objects.filter(txid__in=row.group_txids).exclude(pk=row.pk)
        members += [(other, other.txid) for other in others]
    work.members = members
    return members


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


def _handle_dead(row: ChainTransaction, work: _Work, exc: gateway.TxnDead, depth: int) -> Outcome:
    gateway.forget_suggested_params()
    current = gateway.last_round()
    if row.last_valid_round is not None and current > row.last_valid_round:
        confirmed = _confirmed_version(row)
        if confirmed:
            return _confirm(row, work, *confirmed)
        # No version can apply now (all share this last valid round): every member of the
        # group gets a new generation and is signed again, alone or in a new batch.
        members = _members(row, work)
        match = reduce(
            or_, [Q(pk=m.pk, generation=m.generation, txid=txid, status=Status.SUBMITTED) for m, txid in members]
        )
        updated = ChainTransaction.objects.filter(match).update(
            generation=F("generation") + 1,
            signed_bytes=None,
            txid="",
            group_txids=[],
            lease_txids=[],
            status=Status.PENDING,
            first_valid_round=None,
            last_valid_round=None,
            claimed_until=None,
            next_attempt_at=timezone.now(),
            last_error=f"generation expired unconfirmed after round {row.last_valid_round} (txid {row.txid}); "
            "re-signing",
        )
        if updated:
            logger.warning(
                "chain tx %s txid %s expired at lv %s; %d row(s) re-signed",
                row.pk,
                row.txid,
                row.last_valid_round,
                updated,
            )
        work.claimed = sorted({*work.claimed, *(m.pk for m, _ in members)})
        work.members = None
        work.release()  # the other members' own tasks sign them again
        row.refresh_from_db()
        if row.is_final:
            return Outcome(row.status)
        return _advance(row, work, depth=depth + 1)
    raise _Retry(f"algod: {exc.message}")


# -- building and signing -----------------------------------------------------------------


def _accounts_for(transfers: list[ChainTransaction]) -> tuple[dict[str, ChainAccount], dict[str, ChainAccount]]:
    """The platform accounts by role and every sender and receiver by address, in one query."""
    addresses = sorted(
        {row.payload[n] for row in transfers if row.kind == Kind.ASSET_TRANSFER for n in ("sender", "receiver")}
    )
    # Written out: a batch's claim reads up to 31 rows' parties, and the ORM's IN lists
    # cost more Python than the statement (py-spy on bench/settlement's worker).
    sql = (
        f"SELECT {rows.columns(ChainAccount, connection)} FROM {ChainAccount._meta.db_table} "
        f"WHERE role IN ({', '.join(['%s'] * len(PLATFORM_ROLES))})"
    ) + (f" OR address IN ({', '.join(['%s'] * len(addresses))})" if addresses else "")
    with connection.cursor() as cursor:
        cursor.execute(sql, [*PLATFORM_ROLES, *addresses])
        found = rows.load(ChainAccount, connection, cursor.fetchall())
    roles: dict[str, ChainAccount] = {a.role: a for a in found if a.role in PLATFORM_ROLES}
    for role in PLATFORM_ROLES:
        if role not in roles:
            raise ChainNotBootstrapped(role)
    return roles, {a.address: a for a in found}


def _party(by_address: dict[str, ChainAccount], row: ChainTransaction, name: str) -> ChainAccount:
    address = row.payload[name]
    if address not in by_address:
        raise _Fail(f"{name} {address} is not a custodial or platform account")
    return by_address[address]


def _known_holder(by_address: dict[str, ChainAccount], row: ChainTransaction) -> bool:
    account = by_address.get(row.payload["receiver"])
    return account is not None and int(row.payload["asset_id"]) in (account.opted_in_asset_ids or [])


def _transfer(row: ChainTransaction, by_address, *, receiver_info: dict | None) -> builder.Transfer:
    return builder.Transfer(
        asset_id=int(row.payload["asset_id"]),
        amount=int(row.payload["amount"]),
        sender=_party(by_address, row, "sender"),
        receiver=_party(by_address, row, "receiver"),
        lease=builder.lease_for(row.idempotency_key, row.generation),
        receiver_info=receiver_info,
    )


def _read_receiver(row: ChainTransaction, by_address, work: _Work) -> dict:
    """The receiver's account from algod. Once the transfer confirms the receiver holds
    the asset (it did, or the group opted it in), and the books remember it; an entry
    algod contradicts is struck at once."""
    receiver = _party(by_address, row, "receiver")
    info = gateway.account_info(receiver.address)
    asset_id = int(row.payload["asset_id"])
    if asset_id in (receiver.opted_in_asset_ids or []) and not builder.holds_asset(info, asset_id):
        _remember(receiver, asset_id, holds=False)
    if asset_id not in (receiver.opted_in_asset_ids or []):
        work.learnt.append((receiver, asset_id))
    return info


def _remember(account: ChainAccount, asset_id: int, *, holds: bool) -> None:
    """Record (or strike) a held asset on the account. Read-modify-write without a lock: a
    concurrent writer may drop an entry, which costs one read of algod later, never a
    wrong transfer (a wrong entry is caught by algod's rejection and the fallback read)."""
    current = set(account.opted_in_asset_ids or [])
    wanted = current | {asset_id} if holds else current - {asset_id}
    if wanted != current:
        account.opted_in_asset_ids = sorted(wanted)
        ChainAccount.objects.filter(pk=account.pk).update(opted_in_asset_ids=account.opted_in_asset_ids)


def _build_create(row: ChainTransaction) -> builder.BuiltGroup:
    roles, _ = _accounts_for([row])
    return builder.build_asset_create(
        sp=gateway.suggested_params(),
        validity_rounds=settings.CHAIN_TX_VALIDITY_ROUNDS,
        lease=builder.lease_for(row.idempotency_key, row.generation),
        payload=row.payload,
        treasury=roles["treasury"],
        manager=roles["manager"],
        freeze=roles["freeze"],
        clawback=roles["clawback"],
        funding=roles["funding"],
        treasury_info=gateway.account_info(roles["treasury"].address),
    )


def _before_sign(row: ChainTransaction) -> None:
    if not row.before_sign:
        return
    try:
        import_string(row.before_sign)(row)
    except SigningRefused as exc:
        raise _Fail(f"not signed: {exc}") from None
    except Exception as exc:  # the hook itself broke (database blip, bug): try again later
        raise _Retry(f"before_sign hook {row.before_sign} failed: {type(exc).__name__}: {exc}") from exc


def _sign(group: builder.BuiltGroup) -> tuple[bytes, list[str]]:
    """The group signed: its bytes as algod takes them and each transaction's txid."""
    signed = custody.sign_group(
        [(txn, acct.sealed_key, acct.address) for txn, acct in zip(group.txns, group.signers, strict=True)]
    )
    return b"".join(piece for piece, _ in signed), [txid for _, txid in signed]


def _sign_and_store(row: ChainTransaction, work: _Work) -> ChainTransaction:
    if row.kind != Kind.ASSET_TRANSFER:
        _before_sign(row)
        return _store_single(row, work, _build_create(row))
    if work.handoff is not None:
        work.handoff.split()
    try:
        members, roles, by_address = _claim(row, work)
    except _Changed as changed:
        return changed.row
    if work.handoff is not None:
        # Now, not at the end: the next batch starts while this one signs. A plain read
        # (not the claim's SKIP LOCKED one), so a row another worker is picking is not
        # skipped: every row the wake held back is reached.
        work.handoff.finish()
    _before_sign(row)
    members = [row] + [m for m in members[1:] if _guard_member(m, work)]
    if len(members) == 1:
        info = None if _known_holder(by_address, row) else _read_receiver(row, by_address, work)
        group = builder.build_asset_transfer(
            sp=gateway.suggested_params(),
            validity_rounds=settings.CHAIN_TX_VALIDITY_ROUNDS,
            funding=roles["funding"],
            clawback=roles["clawback"],
            **_transfer_kwargs(_transfer(row, by_address, receiver_info=info)),
        )
        return _store_single(row, work, group)
    group = builder.build_asset_transfers(
        sp=gateway.suggested_params(),
        validity_rounds=settings.CHAIN_TX_VALIDITY_ROUNDS,
        transfers=[_transfer(m, by_address, receiver_info=None) for m in members],
        funding=roles["funding"],
        clawback=roles["clawback"],
    )
    return _store_batch(row, work, members, group)


def _transfer_kwargs(transfer: builder.Transfer) -> dict:
    return dict(
        lease=transfer.lease,
        asset_id=transfer.asset_id,
        amount=transfer.amount,
        sender=transfer.sender,
        receiver=transfer.receiver,
        receiver_info=transfer.receiver_info,
    )


def _claim(row: ChainTransaction, work: _Work) -> tuple[list[ChainTransaction], dict, dict]:
    """Lock the row and the later ready transfers from the same sender (SKIP LOCKED: two
    workers picking at once take disjoint rows and never wait on each other), pick the
    batch the row can lead and claim it, in one short transaction. A batch needs every
    receiver known to hold its asset (no read, one transaction each) and distinct
    receivers; otherwise the row goes alone."""
    for attempt in range(3):
        now = timezone.now()
        at = connection.ops.adapt_datetimefield_value(now)
        last = work.handoff.upto if work.handoff is not None else _NO_LAST_ID  # a share's rows only
        params = [row.pk, *_unclaimed_params(at), row.pk, last, *_ready_params(row.payload["sender"], at)]
        with transaction.atomic():
            locking = " FOR UPDATE SKIP LOCKED" if connection.features.has_select_for_update_skip_locked else ""
            sql = _CLAIM_SQL.format(columns=rows.columns(ChainTransaction, connection)) + locking
            with connection.cursor() as cursor:
                cursor.execute(sql, [*params, BATCH_CANDIDATES + 1])
                candidates = rows.load(ChainTransaction, connection, cursor.fetchall())
            if candidates and candidates[0].pk == row.pk and candidates[0].generation == row.generation:
                return _pick(candidates, work, now)
        # The row is not there to lock: changed, claimed, or locked for a moment by
        # another worker's pick (which releases it within milliseconds).
        current = ChainTransaction.objects.get(pk=row.pk)
        if current.status != Status.PENDING or current.signed_bytes is not None or current.generation != row.generation:
            raise _Changed(current)
        if current.claimed_until is not None and current.claimed_until > timezone.now():
            raise _Taken(row.pk)
        time.sleep(0.005 * (attempt + 1))
    raise _Retry("another worker kept this row locked; trying again later", delay=0.5)


_CLAIM_SQL = (
    f"SELECT {{columns}} FROM {_TABLE} WHERE signed_bytes IS NULL AND ((id = %s AND {_UNCLAIMED_SQL}) OR "
    f"(id > %s AND id <= %s AND {_READY_SQL})) ORDER BY id LIMIT %s"
)
_NO_LAST_ID = 2**63 - 1  # bigint's greatest


def _pick(locked: list[ChainTransaction], work: _Work, now) -> tuple[list[ChainTransaction], dict, dict]:
    row, candidates = locked[0], locked[1:]
    roles, by_address = _accounts_for(locked)
    members = [row]
    if _known_holder(by_address, row):
        receivers = {row.payload["receiver"]}
        for candidate in candidates:
            if len(members) == BATCH_MAX_MEMBERS:
                break
            receiver = candidate.payload["receiver"]
            if receiver not in receivers and _known_holder(by_address, candidate):
                members.append(candidate)
                receivers.add(receiver)
    if len(members) > 1:
        pks = [m.pk for m in members]
        until = connection.ops.adapt_datetimefield_value(now + timedelta(seconds=BATCH_CLAIM_SECONDS))
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {_TABLE} SET claimed_until = %s WHERE id IN ({', '.join(['%s'] * len(pks))})", [until, *pks]
            )
        work.claimed = pks
        memo.hold(pks[1:], seconds=BATCH_CLAIM_SECONDS)
    return members, roles, by_address


class _Changed(Exception):
    """The row was signed, finished or regenerated since this run loaded it."""

    def __init__(self, row: ChainTransaction):
        super().__init__(row.pk)
        self.row = row


def _guard_member(member: ChainTransaction, work: _Work) -> bool:
    """Run a batch member's before_sign hook; a member it refuses fails alone, one whose
    hook broke is left out to retry on its own. True when the member stays in."""
    try:
        _before_sign(member)
        return True
    except _Fail as exc:
        _fail(member, _reason(exc))
    except _Retry as exc:
        _note_retry(member, str(exc), backoff_seconds(member.attempts + 1))
    from .tasks import outbox_process_task  # cycle: chain.tasks imports this module

    work.claimed.remove(member.pk)
    memo.forget([member.pk])
    if member.status != Status.FAILED:
        outbox_process_task.apply_async((member.pk,), countdown=backoff_seconds(member.attempts + 1))
    return False


def _stored_fields(group: builder.BuiltGroup, blob: bytes, txids: list[str]) -> dict:
    main = group.main
    return dict(
        signed_bytes=blob,
        group_txids=txids,
        first_valid_round=main.first_valid_round,
        last_valid_round=main.last_valid_round,
        status=Status.SUBMITTED,
        submitted_at=timezone.now(),
    )


def _store_single(row: ChainTransaction, work: _Work, group: builder.BuiltGroup) -> ChainTransaction:
    blob, txids = _sign(group)
    txid = txids[group.main_index]
    stored = dict(_stored_fields(group, blob, txids), txid=txid)
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
    work.members = [(row, txid)]
    logger.info("chain tx %s signed generation %s txid=%s (%d txns)", row.pk, row.generation, row.txid, len(txids))
    return row


def _store_batch(
    row: ChainTransaction, work: _Work, members: list[ChainTransaction], group: builder.BuiltGroup
) -> ChainTransaction:
    """Store the group's bytes on every member, or on none: a member another worker
    signed (or finished, or regenerated) meanwhile keeps its own version and this group
    is never sent."""
    blob, txids = _sign(group)
    own = {m.pk: txids[i] for m, i in zip(members, group.member_indexes, strict=True)}
    stored = _stored_fields(group, blob, txids)
    with transaction.atomic():
        updated = _store_members(members, own, stored)
        if updated != len(members):
            transaction.set_rollback(True)
    if updated != len(members):
        logger.info("chain tx %s: a batch member changed before its group was stored; not sent", row.pk)
        work.release()
        row.refresh_from_db()
        return row
    for member in members:
        for name, value in stored.items():
            setattr(member, name, value)
        member.txid = own[member.pk]
    work.members = [(m, own[m.pk]) for m in members]
    logger.info("chain tx %s signed a batch of %d rows txid=%s (%d txns)", row.pk, len(members), row.txid, len(txids))
    return row


def _store_members(members: list[ChainTransaction], own: dict[int, str], stored: dict) -> int:
    """Store a batch's version on every member still pending and unsigned at the generation
    this run knows, each with its own txid: one `UPDATE ... FROM (VALUES ...)` (PostgreSQL
    and SQLite alike; the ORM's CASE for the txids cost more Python than the whole group's
    signing). Returns how many rows it stored."""
    meta = ChainTransaction._meta
    qn = connection.ops.quote_name
    table = qn(meta.db_table)
    sets: list[str] = []
    params: list = []
    for name, value in stored.items():
        field = meta.get_field(name)
        assert isinstance(field, Field) and field.column  # a concrete column
        sets.append(f"{qn(field.column)} = %s")
        params.append(field.get_db_prep_save(value, connection))
    values = ", ".join(["(CAST(%s AS bigint), CAST(%s AS integer), %s)"] * len(members))
    for member in members:
        params += [member.pk, member.generation, own[member.pk]]
    params.append(Status.PENDING.value)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET {', '.join(sets)}, {qn('txid')} = v.column3 FROM (VALUES {values}) AS v "
            f"WHERE {table}.{qn('id')} = v.column1 AND {table}.{qn('generation')} = v.column2 "
            f"AND {table}.{qn('status')} = %s AND {table}.{qn('signed_bytes')} IS NULL",
            params,
        )
        return cursor.rowcount


def _same_generation(found) -> Q:
    """These rows, each still at the generation this run knows (rows of one batch are
    almost always at one generation: one term)."""
    by_generation: dict[int, list[int]] = {}
    for row in found:
        by_generation.setdefault(row.generation, []).append(row.pk)
    return reduce(or_, [Q(pk__in=pks, generation=g) for g, pks in by_generation.items()])


def _may_send_alone(row: ChainTransaction) -> bool:
    """A rejected first version of a transfer gets one more, alone and from a fresh read.
    (A second version is always alone: no other row's bytes are shared with it.)"""
    return row.kind == Kind.ASSET_TRANSFER and len(_versions(row)) <= 1


def _send_alone(row: ChainTransaction, work: _Work, exc: gateway.AlgodRejected) -> ChainTransaction:
    """Algod rejected the group (a batch for one member's reason, or a transfer built from
    the books' knowledge of the receiver). Each member gets a second version of the same
    generation: alone, built from a fresh read of its receiver, with the same lease and
    validity window, so the rejected group and the new version can never both confirm.
    A member that was the cause fails alone when its own version is rejected in turn."""
    members = _members(row, work)
    logger.warning(
        "chain tx %s: algod rejected the group of %d row(s) (%s); each is sent on its own",
        row.pk,
        len(members),
        exc.message,
    )
    roles, by_address = _accounts_for([m for m, _ in members])
    sp = gateway.suggested_params()
    for member, txid in members:
        first, last = member.first_valid_round, member.last_valid_round
        assert first is not None and last is not None  # a stored version has its window
        window = type(sp)(sp.fee, first, last, sp.gh, sp.gen, flat_fee=True, min_fee=sp.min_fee)
        info = _read_receiver(member, by_address, work)
        group = builder.build_asset_transfer(
            sp=window,
            validity_rounds=last - first,
            funding=roles["funding"],
            clawback=roles["clawback"],
            **_transfer_kwargs(_transfer(member, by_address, receiver_info=info)),
        )
        blob, txids = _sign(group)
        alone = txids[group.main_index]
        ChainTransaction.objects.filter(
            pk=member.pk, generation=member.generation, txid=txid, status=Status.SUBMITTED
        ).update(
            signed_bytes=blob,
            txid=alone,
            group_txids=txids,
            lease_txids=[*_versions(member), alone],
            last_error=f"algod rejected its group: {exc.message}"[:4000] if len(members) > 1 else "",
        )
    work.claimed = sorted({*work.claimed, *(m.pk for m, _ in members)})
    work.members = None
    work.release()  # the other members send their own versions from their own tasks
    row.refresh_from_db()
    return row


# -- finishing ------------------------------------------------------------------------------


def _run_callback(path: str, row: ChainTransaction) -> None:
    if path:
        import_string(path)(row)


def _confirm(row: ChainTransaction, work: _Work, txid: str, info: dict) -> Outcome:
    """Mark every row of the confirmed group confirmed, each once: those without a
    callback in one UPDATE, each with a callback in its own transaction with it (the
    run's own row last: its callback failing retries its task, another member's sends
    that member's task again)."""
    members = _members(row, work) if txid == row.txid else [(row, txid)]
    result = dict(
        status=Status.CONFIRMED,
        confirmed_round=info["confirmed-round"],
        asset_id=info.get("asset-index") or None,
        confirmed_at=timezone.now(),
        last_error="",
        claimed_until=None,
    )
    plain = [(m, t) for m, t in members if not m.on_confirmed]
    updated = 0
    if plain:
        # A member's confirmed txid is the one stored on it, except for a row confirmed
        # through another version of its generation (then it is alone here).
        moved = [t for m, t in plain if t != m.txid]  # only ever a lone row
        updated = ChainTransaction.objects.filter(_same_generation(m for m, _ in plain), status__in=UNFINISHED).update(
            **result, **({"txid": moved[0]} if moved else {})
        )
        if updated == len(plain):
            memo.hold(m.pk for m, _ in plain)
    own = [(m, t) for m, t in members if m.on_confirmed and m.pk == row.pk]
    for member, member_txid in [(m, t) for m, t in members if m.on_confirmed and m.pk != row.pk] + own:
        try:
            _confirm_with_callback(member, member_txid, result)
        except _Retry as exc:
            if member.pk == row.pk:
                work.finished = True
                raise
            logger.warning("chain tx %s: %s; its own task retries it", member.pk, exc)
            ChainTransaction.objects.filter(pk=member.pk).update(claimed_until=None)
            from .tasks import outbox_process_task  # cycle: chain.tasks imports this module

            outbox_process_task.apply_async((member.pk,), countdown=backoff_seconds(member.attempts + 1))
    work.finished = True
    for account, asset_id in work.learnt:
        _remember(account, asset_id, holds=True)
    if any(m.pk == row.pk for m, _ in plain) and updated == len(plain):
        for name, value in dict(result, txid=txid).items():
            setattr(row, name, value)
    if row.status != Status.CONFIRMED:
        row.refresh_from_db()
    if row.status == Status.CONFIRMED:
        logger.info(
            "chain tx %s confirmed txid=%s round=%s (%d row(s))", row.pk, row.txid, row.confirmed_round, len(members)
        )
    return Outcome(row.status)


def _confirm_with_callback(row: ChainTransaction, txid: str, result: dict) -> None:
    try:
        with transaction.atomic():
            updated = ChainTransaction.objects.filter(
                pk=row.pk, generation=row.generation, status__in=UNFINISHED
            ).update(**result, txid=txid)
            if updated:
                for name, value in dict(result, txid=txid).items():
                    setattr(row, name, value)
                _run_callback(row.on_confirmed, row)
        if updated:
            memo.hold([row.pk])
    except Exception as exc:  # the callback failed: keep the row unfinished, retry it
        raise _Retry(f"on_confirmed callback {row.on_confirmed} failed: {type(exc).__name__}: {exc}") from exc


def _fail(row: ChainTransaction, reason: str) -> Outcome:
    logger.error("chain tx %s failed permanently: %s", row.pk, reason)
    with transaction.atomic():
        updated = ChainTransaction.objects.filter(pk=row.pk, status__in=UNFINISHED).update(
            status=Status.FAILED,
            last_error=reason[:4000],
            failed_at=timezone.now(),
            claimed_until=None,
        )
        row.refresh_from_db()
        if updated:
            _run_callback(row.on_failed, row)
    return Outcome(row.status)
