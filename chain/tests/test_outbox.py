"""The outbox against a real devnet, processed in-process (the worker's code path
without the worker). Crash and outage scenarios with a real worker are in
test_worker_failures.py."""

import base64
from unittest import mock

import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from accounts.tests.factories import UserFactory
from chain import builder, gateway, services, worker
from chain.models import ChainTransaction
from chain.tasks import outbox_process_task

from .conftest import asset_payload, on_chain_units, process, request, transfer

pytestmark = pytest.mark.django_db

CALLS: list[tuple] = []  # (outcome, pk, status, detail) per callback run


def record_confirmed(chain_tx):
    CALLS.append(("confirmed", chain_tx.pk, chain_tx.status, connection.in_atomic_block))


def record_failed(chain_tx):
    CALLS.append(("failed", chain_tx.pk, chain_tx.status, chain_tx.last_error))


def test_outbox_request_needs_the_callers_transaction_and_enqueues_on_commit(
    chain_platform, django_capture_on_commit_callbacks
):
    with mock.patch("chain.tasks.outbox_process_task.delay") as delay:
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            row = request("asset_create", asset_payload(), key="mint-1")
            again = request("asset_create", asset_payload(), key="mint-1")
    assert again.pk == row.pk and ChainTransaction.objects.count() == 1
    assert len(callbacks) == 1
    delay.assert_called_once_with(row.pk)
    assert row.status == "pending"

    with pytest.raises(ValidationError, match="different chain request"):
        request("asset_create", asset_payload(total=5), key="mint-1")


@pytest.mark.django_db(transaction=True)
def test_outbox_request_outside_a_transaction_is_refused():
    with pytest.raises(RuntimeError, match="inside the caller's transaction.atomic"):
        services.outbox_request(kind="asset_create", payload=asset_payload(), idempotency_key="k")


def test_payload_is_validated(chain_platform):
    with pytest.raises(ValidationError) as err:
        transfer(1, "not-an-address", chain_platform["treasury"].address, 0)
    assert {"sender", "amount"} <= set(err.value.message_dict)


def test_asset_create_records_asset_id_and_round_and_runs_the_callback_in_the_same_transaction(chain_platform):
    CALLS.clear()
    row = process(request("asset_create", asset_payload(500), on_confirmed=f"{__name__}.record_confirmed"))
    assert row.status == "confirmed", row.last_error
    assert row.asset_id and row.confirmed_round and len(row.txid) == 52
    assert CALLS == [("confirmed", row.pk, "confirmed", True)]
    params = gateway.get_client().asset_info(row.asset_id)["params"]
    treasury = chain_platform["treasury"].address
    assert params["creator"] == treasury and params["reserve"] == treasury
    assert params["clawback"] == chain_platform["clawback"].address
    assert params["freeze"] == chain_platform["freeze"].address
    assert params["manager"] == chain_platform["manager"].address
    assert params["default-frozen"] is True and params["total"] == 500 and params["decimals"] == 0
    assert base64.b64decode(params["metadata-hash"]).hex() == asset_payload()["metadata_hash"]
    assert on_chain_units(treasury, row.asset_id) == 500


def test_settlement_to_a_new_investor_funds_and_opts_in_then_later_transfers_do_not(
    chain_platform, minted_asset, investor_account
):
    treasury = chain_platform["treasury"].address
    first = process(transfer(minted_asset, treasury, investor_account.address, 10))
    assert first.status == "confirmed", first.last_error
    assert len(first.group_txids) == 3  # fund + opt-in + clawback
    assert on_chain_units(investor_account.address, minted_asset) == 10
    info = gateway.account_info(investor_account.address)
    assert info["amount"] >= 200_000 and info["assets"][0]["is-frozen"] is True

    second = process(transfer(minted_asset, treasury, investor_account.address, 5))
    assert second.status == "confirmed" and len(second.group_txids) == 2  # fee payer + clawback
    assert on_chain_units(investor_account.address, minted_asset) == 15
    assert on_chain_units(treasury, minted_asset) == 1_000 - 15


def test_processing_the_same_row_again_never_transfers_twice(chain_platform, minted_asset, investor_account):
    treasury = chain_platform["treasury"].address
    row = process(transfer(minted_asset, treasury, investor_account.address, 7))
    for _ in range(3):
        worker.outbox_process(chain_tx_id=row.pk)
    # Simulate a worker that died after storing the signed bytes but before it knew the
    # outcome: the row is put back to "submitted" and processed again.
    ChainTransaction.objects.filter(pk=row.pk).update(status="submitted", confirmed_round=None)
    worker.memo.forget([row.pk])  # a new worker process: it knows only what the row says
    assert process(row).status == "confirmed"
    assert on_chain_units(investor_account.address, minted_asset) == 7


def test_stored_bytes_are_resent_after_a_crash_before_submit(chain_platform, minted_asset, investor_account):
    treasury = chain_platform["treasury"].address
    row = transfer(minted_asset, treasury, investor_account.address, 3)
    with mock.patch("chain.gateway.submit", side_effect=gateway.AlgodRetryable("algod unreachable: boom")):
        outcome = worker.outbox_process(chain_tx_id=row.pk)
    assert outcome.retry_in is not None
    row.refresh_from_db()
    assert row.status == "submitted" and row.signed_bytes and "unreachable" in row.last_error
    stored_txid = row.txid
    row = process(row)
    assert row.status == "confirmed" and row.txid == stored_txid
    assert on_chain_units(investor_account.address, minted_asset) == 3


def test_already_in_ledger_counts_as_success(chain_platform, minted_asset, investor_account):
    treasury = chain_platform["treasury"].address
    row = transfer(minted_asset, treasury, investor_account.address, 4)
    with mock.patch("chain.gateway.wait_for_confirmation", side_effect=gateway.AlgodRetryable("timeout")):
        worker.outbox_process(chain_tx_id=row.pk)  # sent, outcome unknown
    with mock.patch("chain.gateway.pending_info", return_value=None):  # a node that forgot it
        row = process(row)
    assert row.status == "confirmed", row.last_error
    assert on_chain_units(investor_account.address, minted_asset) == 4


def test_a_transaction_past_its_last_valid_round_is_re_signed_once(
    chain_platform, minted_asset, investor_account, devnet, settings
):
    settings.CHAIN_TX_VALIDITY_ROUNDS = 5
    treasury = chain_platform["treasury"].address
    row = transfer(minted_asset, treasury, investor_account.address, 6)
    with mock.patch("chain.gateway.submit", side_effect=gateway.AlgodRetryable("lost")):
        worker.outbox_process(chain_tx_id=row.pk)
    row.refresh_from_db()
    old_txid, old_lv = row.txid, row.last_valid_round
    import urllib.request

    req = urllib.request.Request(
        f"{devnet.url}/devnet/advance?rounds=10", method="POST", headers={"X-Algo-API-Token": devnet.token}
    )
    urllib.request.urlopen(req).read()
    assert gateway.last_round() > old_lv
    row = process(row)
    assert row.status == "confirmed", row.last_error
    assert row.generation == 1 and row.txid != old_txid
    assert on_chain_units(investor_account.address, minted_asset) == 6


def test_a_permanent_rejection_fails_the_row_with_algods_reason(chain_platform, minted_asset, investor_account):
    CALLS.clear()
    treasury = chain_platform["treasury"].address
    row = process(
        transfer(minted_asset, treasury, investor_account.address, 5_000, on_failed=f"{__name__}.record_failed")
    )
    assert row.status == "failed" and row.attempts == 1
    assert "algod rejected" in row.last_error and "underflow" in row.last_error
    assert CALLS and CALLS[0][:3] == ("failed", row.pk, "failed")
    assert worker.outbox_process(chain_tx_id=row.pk).retry_in is None  # finished rows are left alone

    retried = services.outbox_retry(chain_tx=row, actor="staff@example.com")
    assert retried.status == "pending" and retried.generation == 1 and "staff@example.com" in retried.last_error


def test_algod_down_is_retryable_and_keeps_the_row_pending(chain_platform, minted_asset, investor_account, settings):
    settings.ALGOD_URL = "http://127.0.0.1:9"  # nothing listens there
    row = transfer(minted_asset, chain_platform["treasury"].address, investor_account.address, 1)
    outcome = worker.outbox_process(chain_tx_id=row.pk)
    row.refresh_from_db()
    assert outcome.retry_in and 0 < outcome.retry_in <= settings.CHAIN_RETRY_MAX_SECONDS
    assert row.status == "pending" and "algod unavailable" in row.last_error and row.signed_bytes is None


def test_sweeper_re_enqueues_only_overdue_rows(chain_platform, minted_asset, investor_account, settings):
    from django.utils import timezone

    row = transfer(minted_asset, chain_platform["treasury"].address, investor_account.address, 1)
    fresh = transfer(minted_asset, chain_platform["treasury"].address, investor_account.address, 1)
    ChainTransaction.objects.filter(pk=row.pk).update(next_attempt_at=timezone.now() - timezone.timedelta(minutes=5))
    with mock.patch("chain.tasks.outbox_process_task.delay") as delay:
        assert worker.outbox_sweep() == 1
        assert worker.outbox_sweep() == 0  # claimed: not sent twice in a row
    delay.assert_called_once_with(row.pk)
    assert fresh.pk != row.pk


def test_sweeper_tops_the_queue_up_and_no_further(chain_platform, minted_asset, investor_account, settings):
    """A queue that already holds messages gets only the difference to CHAIN_SWEEP_BATCH:
    overdue rows that are merely waiting in a long queue are not sent again and again."""
    from django.utils import timezone

    from chain.worker import queue_purge

    settings.CHAIN_SWEEP_BATCH = 5
    rows = [transfer(minted_asset, chain_platform["treasury"].address, investor_account.address, 1) for _ in range(6)]
    ChainTransaction.objects.filter(pk__in=[r.pk for r in rows]).update(
        next_attempt_at=timezone.now() - timezone.timedelta(minutes=5)
    )
    queue_purge()
    try:
        for _ in range(3):  # three messages already waiting (no worker runs in this test)
            outbox_process_task.delay(0)
        assert worker.settlement_queue_depth() == 3
        assert worker.outbox_sweep() == 2  # 5 - 3
        assert worker.settlement_queue_depth() == 5
        ChainTransaction.objects.filter(pk__in=[r.pk for r in rows]).update(
            next_attempt_at=timezone.now() - timezone.timedelta(minutes=5)
        )
        assert worker.outbox_sweep() == 0  # full: the rows wait until it drains
        queue_purge()
        assert worker.outbox_sweep() == 5
    finally:
        queue_purge()


def test_no_secret_key_in_the_database_or_logs(chain_platform, minted_asset, caplog):
    import logging

    from algosdk import account as algo_account

    caplog.set_level(logging.DEBUG)
    sk, address = algo_account.generate_account()
    with mock.patch("chain.services.algo_account.generate_account", return_value=(sk, address)):
        account = services.investor_account_get_or_create(user=UserFactory())
    process(transfer(minted_asset, chain_platform["treasury"].address, account.address, 2))
    seed = base64.b64decode(sk)[:32]
    with connection.cursor() as cursor:
        cursor.execute("SELECT key_ciphertext, wrapped_data_key FROM chain_chainaccount WHERE address=%s", [address])
        blobs = [bytes(b) for b in cursor.fetchone()]
        cursor.execute("SELECT signed_bytes FROM chain_chaintransaction")
        blobs += [bytes(r[0]) for r in cursor.fetchall() if r[0]]
    for blob in blobs:
        assert seed not in blob and sk.encode() not in blob and seed.hex().encode() not in blob
    text = caplog.text
    assert address in text  # the account was logged, by address
    assert sk not in text and seed.hex() not in text
    assert sk not in repr(account) and sk not in str(account)


def test_investor_account_is_created_once_per_user(db):
    user = UserFactory()
    first = services.investor_account_get_or_create(user=user)
    assert services.investor_account_get_or_create(user=user).pk == first.pk
    assert first.role == "investor" and len(first.address) == 58 and first.key_id == "test-1"


def test_platform_account_explains_missing_bootstrap(db):
    with pytest.raises(services.ChainNotBootstrapped, match="chain_bootstrap"):
        services.platform_account("clawback")


def test_lease_is_32_bytes_and_changes_with_the_generation():
    assert len(builder.lease_for("k", 0)) == 32
    assert builder.lease_for("k", 0) != builder.lease_for("k", 1)


def _counting_algod_calls():
    calls = []
    client = gateway.get_client()
    original = client.algod_request

    def counting(method, requrl, *args, **kwargs):
        calls.append((method, requrl.split("/")[1]))
        return original(method, requrl, *args, **kwargs)

    return calls, mock.patch.object(client, "algod_request", side_effect=counting)


def test_a_settlement_costs_five_statements_and_two_algod_calls_once_the_receiver_is_known(
    chain_platform, minted_asset, investor_account, django_assert_num_queries
):
    """Count the attempt and load the row; pick the batch (lock the row and the ready
    rows after it, SKIP LOCKED) and load the accounts in one short transaction (a
    savepoint pair here, inside the test's transaction); store the signed bytes; confirm.
    The first settlement to a receiver reads its account from algod and then records
    that it holds the asset (one more statement); later ones read nothing before
    submitting. Suggested params are cached."""
    treasury = chain_platform["treasury"].address
    gateway.suggested_params()
    first = transfer(minted_asset, treasury, investor_account.address, 2)
    calls, counting = _counting_algod_calls()
    with counting, django_assert_num_queries(8):
        assert worker.outbox_process(chain_tx_id=first.pk).status == "confirmed"
    assert calls == [("GET", "accounts"), ("POST", "transactions"), ("GET", "transactions")]
    investor_account.refresh_from_db()
    assert investor_account.opted_in_asset_ids == [minted_asset]

    second = transfer(minted_asset, treasury, investor_account.address, 3)
    calls, counting = _counting_algod_calls()
    with counting, django_assert_num_queries(7):
        assert worker.outbox_process(chain_tx_id=second.pk).status == "confirmed"
    assert calls == [("POST", "transactions"), ("GET", "transactions")]
    second.refresh_from_db()
    assert second.attempts == 1 and len(second.group_txids) == 2
    assert on_chain_units(investor_account.address, minted_asset) == 5
