"""The worker loses its database connection mid-task: the task retries at once with
backoff (config/db_unavailable.py DatabaseRetryTask) and completes, exactly once, long
before the outbox sweeper would look at the row."""

import pytest

from accounts.tests.factories import UserFactory
from chain import services
from tests.plugins.db_faults import terminate_backends

from .conftest import on_chain_units, transfer, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_connection_killed_between_submit_and_confirmation_retries_and_confirms_once(
    chain_platform, minted_asset, start_worker
):
    treasury = chain_platform["treasury"].address
    investor = services.investor_account_get_or_create(user=UserFactory())
    # The sweeper would wait 600 s: only the task's own retry can finish the row here.
    worker = start_worker("db-loss", CHAIN_PAUSE_AFTER_SUBMIT_SECONDS=3, CHAIN_OUTBOX_STALE_SECONDS=600)

    row = transfer(minted_asset, treasury, investor.address, 25)
    wait_until(lambda: on_chain_units(investor.address, minted_asset) == 25, 30, message="transfer on chain")
    terminate_backends()  # the worker's connection, while it sleeps before recording

    def confirmed():
        row.refresh_from_db()
        return row.status == "confirmed"

    wait_until(confirmed, 30, message="confirmation by the retried task")
    log = worker.log()
    assert "lost the database" in log and "retry 1/5" in log
    assert row.generation == 0 and row.confirmed_round
    assert on_chain_units(investor.address, minted_asset) == 25
    assert on_chain_units(treasury, minted_asset) == 1_000 - 25
