"""Waking the workers (chain.worker.wake): transfers from one sender committed while a wake
for it waits send no task of their own; the woken run and the runs it hands on to settle
every one of them, exactly once. Real broker (Redis) and devnet; the queue is drained
in-process, message by message, as a worker would."""

import threading
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from chain import services, worker
from chain.models import ChainTransaction
from chain.worker import queue_purge, settlement_queue_depth
from config.celery import app

from .conftest import on_chain_units, process, transfer

pytestmark = pytest.mark.django_db(transaction=True)  # wakes are sent on commit


@pytest.fixture(autouse=True)
def _empty_queue():
    queue_purge()
    yield
    queue_purge()


@pytest.fixture
def known(holders):
    """The five holders, their first settlements' wakes gone (settled already)."""
    queue_purge()
    return holders


def drain(limit: int | None = None) -> list[tuple[int, str | None]]:
    """Run every waiting outbox message in this process until the queue is empty (hand-offs
    included; at most `limit` messages); return what each carried: (row id, the sender it
    was woken for)."""
    runs: list[tuple[int, str | None]] = []
    with app.connection_for_write() as conn:
        queue = conn.SimpleQueue(app.conf.task_default_queue, no_ack=True)
        try:
            while limit is None or len(runs) < limit:
                try:
                    message = queue.get(timeout=1)
                except queue.Empty:
                    return runs
                args, kwargs, _ = message.payload
                runs.append((args[0], kwargs.get("sender")))
                worker.outbox_process(chain_tx_id=args[0], **kwargs)
        finally:
            queue.close()
    return runs


def take_messages() -> list[tuple[int, dict]]:
    """Every waiting outbox message, taken off the queue without running it: (row id, kwargs)."""
    taken: list[tuple[int, dict]] = []
    with app.connection_for_write() as conn:
        queue = conn.SimpleQueue(app.conf.task_default_queue, no_ack=True)
        try:
            while True:
                try:
                    args, kwargs, _ = queue.get(timeout=1).payload
                except queue.Empty:
                    return taken
                taken.append((args[0], kwargs))
        finally:
            queue.close()


def statuses(rows) -> set[str]:
    return set(ChainTransaction.objects.filter(pk__in=[r.pk for r in rows]).values_list("status", flat=True))


def test_a_backlog_from_one_sender_is_one_message_per_batch_and_settles_once(chain_platform, minted_asset, known):
    treasury = chain_platform["treasury"].address
    rows = [transfer(minted_asset, treasury, known[i % 5].address, 10 + i) for i in range(20)]  # 20 commits
    assert settlement_queue_depth() == 1  # the first woke the worker; 19 wait for it

    runs = drain()

    assert statuses(rows) == {"confirmed"}
    # Four batches of five (five receivers), one message each. The wake keeps the first
    # 15 rows and, before it claims, hands the rest (from the 16th) to a task of its own
    # (`_Handoff.split`); each share is then handed on batch by batch, never past its end.
    assert runs == [(rows[0].pk, treasury), (rows[15].pk, treasury), (rows[5].pk, treasury), (rows[10].pk, treasury)]
    groups = [set(ChainTransaction.objects.get(pk=r.pk).group_txids) for r in rows]
    for first in range(0, 20, 5):
        assert all(groups[i] == groups[first] for i in range(first, first + 5))
    assert len({frozenset(g) for g in groups}) == 4
    for i, holder in enumerate(known):
        assert on_chain_units(holder.address, minted_asset) == 1 + sum(10 + j for j in range(i, 20, 5))


def test_a_long_backlog_is_shared_out_before_the_claim_and_settled_side_by_side(chain_platform, minted_asset, known):
    """`_Handoff.split`: a woken run hands every further 15 rows to a task of its own at once
    (up to four shares; the last one carries the rest), instead of one hand-off per batch."""
    treasury = chain_platform["treasury"].address
    rows = [transfer(minted_asset, treasury, known[i % 5].address, 1) for i in range(50)]
    (wake,) = take_messages()
    assert wake == (rows[0].pk, {"sender": treasury})

    worker.outbox_process(chain_tx_id=rows[0].pk, sender=treasury)  # the wake's run

    assert statuses(rows[:5]) == {"confirmed"} and statuses(rows[5:]) == {"pending"}
    shares = take_messages()
    assert shares == [
        (rows[15].pk, {"sender": treasury, "upto": rows[29].pk}),
        (rows[30].pk, {"sender": treasury, "upto": rows[44].pk}),
        (rows[45].pk, {"sender": treasury, "upto": rows[49].pk}),
        (rows[5].pk, {"sender": treasury, "upto": rows[14].pk}),  # its own share, handed on after its claim
    ]
    for pk, kwargs in shares:
        worker.outbox_process(chain_tx_id=pk, **kwargs)
    drain()
    assert statuses(rows) == {"confirmed"}
    assert len({tuple(ChainTransaction.objects.get(pk=r.pk).group_txids) for r in rows}) == 10
    assert [on_chain_units(h.address, minted_asset) for h in known] == [11] * 5


def test_a_share_never_claims_past_its_end(chain_platform, minted_asset, known):
    """A run handed rows up to `upto` batches only those: the rows after them are another
    share's, whose run may be claiming them side by side."""
    treasury = chain_platform["treasury"].address
    mine = [transfer(minted_asset, treasury, known[0].address, 1) for _ in range(3)]  # one receiver: alone each
    theirs = [transfer(minted_asset, treasury, h.address, 1) for h in known[1:]]  # could join mine's batch
    queue_purge()

    worker.outbox_process(chain_tx_id=mine[0].pk, sender=treasury, upto=mine[-1].pk)

    assert statuses(mine[:1]) == {"confirmed"} and statuses(mine[1:] + theirs) == {"pending"}
    assert len(ChainTransaction.objects.get(pk=mine[0].pk).group_txids) == 2  # fee payer + its transfer
    assert not ChainTransaction.objects.filter(pk__in=[r.pk for r in theirs], claimed_until__isnull=False).exists()
    assert take_messages() == [(mine[1].pk, {"sender": treasury, "upto": mine[-1].pk})]


def test_a_wake_whose_row_is_settled_already_hands_on_to_the_rows_after_it(chain_platform, minted_asset, known):
    treasury = chain_platform["treasury"].address
    first = transfer(minted_asset, treasury, known[0].address, 7)  # wakes: one message
    assert process(first).status == "confirmed"  # settled by another run before its wake is taken
    later = [transfer(minted_asset, treasury, h.address, 3) for h in known[1:3]]  # under the wake
    assert settlement_queue_depth() == 1

    runs = drain()

    assert runs == [(first.pk, treasury), (later[0].pk, treasury)]
    assert statuses(later) == {"confirmed"}
    assert [on_chain_units(h.address, minted_asset) for h in known[:3]] == [8, 4, 4]


def test_rows_another_worker_is_picking_are_handed_on_to_not_skipped(chain_platform, minted_asset, known):
    """The woken run's claim skips rows another worker holds locked for a moment (SKIP
    LOCKED); its hand-off must still reach them, or nothing would send them again."""
    treasury = chain_platform["treasury"].address
    first, *held = [transfer(minted_asset, treasury, h.address, 4) for h in known[:3]]
    locked, release = threading.Event(), threading.Event()

    def another_worker_picking():
        with transaction.atomic():
            list(ChainTransaction.objects.select_for_update().filter(pk__in=[r.pk for r in held]))
            locked.set()
            release.wait(30)
        connection.close()

    picker = threading.Thread(target=another_worker_picking)
    picker.start()
    assert locked.wait(30)
    try:
        assert drain(limit=1) == [(first.pk, treasury)]  # settles `first` alone: the others are locked
    finally:
        release.set()
        picker.join()
    assert statuses([first]) == {"confirmed"} and statuses(held) == {"pending"}

    assert drain() == [(held[0].pk, treasury)]  # the hand-off: one batch for both
    assert statuses(held) == {"confirmed"}
    assert [on_chain_units(h.address, minted_asset) for h in known[:3]] == [5, 5, 5]


def test_transfers_committed_after_the_wake_was_taken_send_their_own(chain_platform, minted_asset, known):
    treasury = chain_platform["treasury"].address
    first = transfer(minted_asset, treasury, known[0].address, 2)
    assert drain() == [(first.pk, treasury)]  # the run clears the wake before it reads rows
    second = transfer(minted_asset, treasury, known[1].address, 2)
    assert settlement_queue_depth() == 1
    assert drain() == [(second.pk, treasury)]
    assert statuses([first, second]) == {"confirmed"}


def test_a_row_committed_after_a_later_numbered_wake_sends_its_own_task(chain_platform, minted_asset, known):
    """Ids are taken at insert, not at commit. A transfer that commits after a later-numbered
    one woke the worker is below that wake's duty (the rows after its own): it must send its
    own task, or nothing reaches it until the sweeper (concurrent purchases in CI did this)."""
    treasury = chain_platform["treasury"].address
    inserted, commit = threading.Event(), threading.Event()
    slow: dict[str, ChainTransaction] = {}

    def slow_buyer():
        payload = {"asset_id": minted_asset, "sender": treasury, "receiver": known[0].address, "amount": 2}
        with transaction.atomic():
            slow["row"] = services.outbox_request(kind="asset_transfer", payload=payload, idempotency_key="slow")
            inserted.set()
            commit.wait(30)
        connection.close()

    buyer = threading.Thread(target=slow_buyer)
    buyer.start()
    assert inserted.wait(30)
    try:
        later = transfer(minted_asset, treasury, known[1].address, 3)  # commits first and wakes the worker
    finally:
        commit.set()
        buyer.join()
    early = slow["row"]
    assert early.pk < later.pk

    messages = take_messages()
    assert messages == [(later.pk, {"sender": treasury}), (early.pk, {})]
    for pk, kwargs in messages:
        worker.outbox_process(chain_tx_id=pk, **kwargs)
    assert statuses([early, later]) == {"confirmed"}
    assert [on_chain_units(h.address, minted_asset) for h in known[:2]] == [3, 4]


def test_a_lost_wake_only_delays_its_rows_until_the_sweeper(chain_platform, minted_asset, known, settings):
    """The broker loses the wake's message (the key still stands): the rows committed under
    it sent nothing, and the sweeper sends them once they are overdue."""
    treasury = chain_platform["treasury"].address
    first = transfer(minted_asset, treasury, known[0].address, 5)
    app.control.purge()  # the message is lost; the wake's key is not cleared
    second = transfer(minted_asset, treasury, known[1].address, 6)
    assert drain() == []
    assert statuses([first, second]) == {"pending"}

    overdue = timezone.now() - timedelta(seconds=settings.CHAIN_OUTBOX_STALE_SECONDS + 1)
    ChainTransaction.objects.filter(pk__in=[first.pk, second.pk]).update(next_attempt_at=overdue)
    assert worker.outbox_sweep() == 2
    drain()

    assert statuses([first, second]) == {"confirmed"}
    assert [on_chain_units(h.address, minted_asset) for h in known[:2]] == [6, 7]
