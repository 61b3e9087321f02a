"""Failure scenarios with a real Celery worker on Redis and a real devnet over HTTP.
Every test checks the ledger itself: exactly the requested units moved, once."""

import os
import re
import time

import pytest

from accounts.tests.factories import UserFactory
from chain import services
from chain.models import ChainAccount, ChainTransaction
from chain.tasks import outbox_process_task
from chain.worker import outbox_sweep

from .conftest import asset_payload, on_chain_units, process, request, secrets_of, transfer, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

# Outage length for the devnet-down test: several retry intervals (test settings cap
# backoff at CHAIN_RETRY_MAX_SECONDS = 3 s). Override with CHAIN_TEST_OUTAGE_SECONDS=60.
OUTAGE_SECONDS = float(os.environ.get("CHAIN_TEST_OUTAGE_SECONDS", "12"))


@pytest.fixture
def asset(chain_platform):
    row = process(request("asset_create", asset_payload(1_000)))
    assert row.status == "confirmed", row.last_error
    return row.asset_id


def investors(n):
    return [services.investor_account_get_or_create(user=UserFactory()) for _ in range(n)]


def status_of(row):
    row.refresh_from_db()
    return row.status


def test_worker_killed_between_submit_and_confirmation_leaves_exactly_one_transfer(chain_platform, asset, start_worker):
    treasury = chain_platform["treasury"].address
    (investor,) = investors(1)
    worker = start_worker("paused", CHAIN_PAUSE_AFTER_SUBMIT_SECONDS=60)

    row = transfer(asset, treasury, investor.address, 25)
    # The group is in the ledger (devnet confirms on POST) but the worker is still asleep
    # before recording it: the row says "submitted".
    wait_until(lambda: on_chain_units(investor.address, asset) == 25, 30, message="transfer on chain")
    assert status_of(row) == "submitted"
    worker.kill()
    assert "submitted txid=" in worker.log()

    start_worker("restarted")
    # The SIGKILLed task's message stays unacked until the broker's visibility timeout;
    # the sweeper re-enqueues the overdue row long before that.
    wait_until(lambda: outbox_sweep() or status_of(row) == "confirmed", 30, interval=1)
    wait_until(lambda: status_of(row) == "confirmed", 30, message="confirmation after restart")

    assert row.generation == 0 and row.confirmed_round
    assert on_chain_units(investor.address, asset) == 25
    assert on_chain_units(treasury, asset) == 1_000 - 25


def test_devnet_outage_then_every_pending_settlement_completes_once(chain_platform, asset, start_worker, devnet):
    treasury = chain_platform["treasury"].address
    accounts = investors(4)
    start_worker()
    devnet.stop()
    try:
        rows = [transfer(asset, treasury, acct.address, 10 + i) for i, acct in enumerate(accounts)]
        time.sleep(OUTAGE_SECONDS)
        for row in rows:
            row.refresh_from_db()
            assert row.status == "pending" and "algod unavailable" in row.last_error
        assert sum(r.attempts for r in rows) >= 2 * len(rows), [r.attempts for r in rows]  # retried, backing off
    finally:
        devnet.start()

    wait_until(
        lambda: all(status_of(r) == "confirmed" for r in rows),
        60,
        interval=0.5,
        message="all settlements confirmed after the outage",
    )
    for i, acct in enumerate(accounts):
        assert on_chain_units(acct.address, asset) == 10 + i
    assert on_chain_units(treasury, asset) == 1_000 - sum(10 + i for i in range(len(accounts)))


def test_the_same_task_delivered_twice_moves_tokens_once(chain_platform, asset, start_worker):
    treasury = chain_platform["treasury"].address
    (investor,) = investors(1)
    start_worker("a")
    start_worker("b")
    row = transfer(asset, treasury, investor.address, 9)  # enqueued once on commit ...
    outbox_process_task.delay(row.pk)  # ... and delivered again, to whichever worker is free
    outbox_process_task.delay(row.pk)
    wait_until(lambda: status_of(row) == "confirmed", 30)
    time.sleep(1.5)  # let the duplicates finish
    assert on_chain_units(investor.address, asset) == 9
    assert ChainTransaction.objects.get(pk=row.pk).generation == 0


def test_a_permanent_rejection_fails_the_row_with_algods_reason_and_no_retry_storm(chain_platform, asset, start_worker):
    treasury = chain_platform["treasury"].address
    (investor,) = investors(1)
    worker = start_worker()
    row = transfer(asset, treasury, investor.address, 1_001)  # more than the supply
    wait_until(lambda: status_of(row) == "failed", 30)
    assert "underflow" in row.last_error and "algod rejected" in row.last_error
    time.sleep(3)  # several retry intervals
    row.refresh_from_db()
    assert row.attempts == 1 and row.status == "failed"
    assert len(re.findall(r"Task chain\.tasks\.outbox_process\[[^\]]+\] received", worker.log())) == 1
    assert on_chain_units(investor.address, asset) == 0


def test_a_wrong_master_key_is_a_clear_error_and_nothing_is_signed(chain_platform, asset, start_worker):
    treasury = chain_platform["treasury"].address
    (investor,) = investors(1)
    worker = start_worker("wrong-key", CUSTODY_MASTER_KEYS="test-1:" + "V3JvbmctbWFzdGVyLWtleS0zMi1ieXRlcy1sb25nISE=")
    row = transfer(asset, treasury, investor.address, 5)
    wait_until(lambda: status_of(row) == "failed", 30)
    assert "master key 'test-1' cannot unwrap" in row.last_error and "nothing was signed" in row.last_error
    assert row.signed_bytes is None and row.txid == ""
    assert on_chain_units(investor.address, asset) == 0
    assert "cannot unwrap" in worker.log()


def test_no_secret_key_in_worker_logs(chain_platform, asset, start_worker):
    treasury = chain_platform["treasury"].address
    (investor,) = investors(1)
    worker = start_worker()
    row = transfer(asset, treasury, investor.address, 3)
    wait_until(lambda: status_of(row) == "confirmed", 30)
    log = worker.log()
    assert row.txid in log
    for account in ChainAccount.objects.all():
        for secret in secrets_of(account):
            assert secret not in log
