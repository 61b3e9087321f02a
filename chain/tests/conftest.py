import base64
import hashlib
import time
import uuid

import pytest
from django.db import transaction

from accounts.tests.factories import UserFactory
from chain import gateway, services
from chain.models import ChainTransaction
from chain.worker import outbox_process


@pytest.fixture(autouse=True)
def _fresh_worker_memo():
    """Each test starts like a new worker process: it knows only what the rows say."""
    from chain.worker import memo

    memo.clear()
    yield
    memo.clear()


def asset_payload(total: int = 1_000) -> dict:
    return {
        "asset_name": "Harbour Building",
        "unit_name": "HRB",
        "total": total,
        "decimals": 0,
        "default_frozen": True,
        "url": "https://rwa.example/assets/1/metadata.json#arc3",
        "metadata_hash": hashlib.sha256(b"{}").hexdigest(),
    }


def request(kind: str, payload: dict, key: str | None = None, **kwargs) -> ChainTransaction:
    with transaction.atomic():
        return services.outbox_request(kind=kind, payload=payload, idempotency_key=key or uuid.uuid4().hex, **kwargs)


def transfer(
    asset_id: int, sender: str, receiver: str, amount: int, key: str | None = None, **kwargs
) -> ChainTransaction:
    payload = {"asset_id": asset_id, "sender": sender, "receiver": receiver, "amount": amount}
    return request("asset_transfer", payload, key, **kwargs)


def process(row: ChainTransaction) -> ChainTransaction:
    outbox_process(chain_tx_id=row.pk)
    row.refresh_from_db()
    return row


def on_chain_units(address: str, asset_id: int) -> int:
    return gateway.asset_amount(address, asset_id) or 0


@pytest.fixture
def minted_asset(chain_platform):
    """A confirmed ASA held by the treasury. Returns its asset id."""
    row = process(request("asset_create", asset_payload(1_000)))
    assert row.status == "confirmed", row.last_error
    return row.asset_id


@pytest.fixture
def holders(chain_platform, minted_asset):
    """Five investors whose first settlement has opted them in: the books know it."""
    treasury = chain_platform["treasury"].address
    accounts = [services.investor_account_get_or_create(user=UserFactory()) for _ in range(5)]
    for account in accounts:
        assert process(transfer(minted_asset, treasury, account.address, 1)).status == "confirmed"
        account.refresh_from_db()
        assert account.opted_in_asset_ids == [minted_asset]
    return accounts


@pytest.fixture
def investor_account(db):
    return services.investor_account_get_or_create(user=UserFactory())


def secrets_of(account) -> list[str]:
    """The plaintext forms a leaked key could take (for grepping logs and pages)."""
    from algosdk import mnemonic

    from chain.custody import _open, get_backend

    sk = _open(account.address, account.sealed_key, get_backend())
    seed = base64.b64decode(sk)[:32]
    return [sk, seed.hex(), base64.b64encode(seed).decode(), mnemonic.from_private_key(sk)]


@pytest.fixture
def start_worker(transactional_db, tmp_path):
    """Factory: start a real Celery worker with extra environment (e.g. a wrong master
    key, a pause after submit). Workers are stopped at teardown."""
    from chain.worker import queue_purge
    from tests.plugins.celery_worker import WorkerProcess, _worker_env

    queue_purge()
    workers = []

    def start(name: str = "worker", **env):
        worker_env = _worker_env()
        worker_env.update({k: str(v) for k, v in env.items()})
        worker = WorkerProcess(tmp_path / f"{name}-{len(workers)}.log", worker_env)
        workers.append(worker)
        return worker.start()

    yield start
    for worker in workers:
        worker.stop()
    queue_purge()


def wait_until(predicate, timeout: float, interval: float = 0.2, message: str = ""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message or predicate}")
