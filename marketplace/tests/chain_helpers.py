"""Minting a real ASA on the session devnet for marketplace tests, the way issuance
does it: an outbox row whose confirmation runs assets.services.asset_mint_confirmed
(which opens the offering). Also a bare transfer through the outbox, processed here."""

import hashlib
import time
import uuid

from django.db import transaction

from assets.models import Asset
from assets.tests.factories import AssetFactory
from chain.models import ChainTransaction
from chain.services import outbox_request
from chain.worker import outbox_process


def wait_until(predicate, timeout=60, interval=0.2, message="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {message}")


def mint_live_asset(*, chain_total=None, process_here=False, timeout=60, **fields) -> Asset:
    """An asset minted on devnet and live, with its offering open. `chain_total` mints a
    different supply than the books say (to provoke a settlement failure)."""
    asset: Asset = AssetFactory.create(status=Asset.Status.MINTING, **fields)
    digest = hashlib.sha256(f"metadata {asset.public_id}".encode()).hexdigest()
    Asset.objects.filter(pk=asset.pk).update(metadata_hash=digest)
    with transaction.atomic():
        row = outbox_request(
            kind="asset_create",
            payload={
                "asset_name": asset.asset_name,
                "unit_name": asset.unit_name,
                "total": chain_total or asset.total_fractions,
                "decimals": 0,
                "default_frozen": True,
                "url": "https://rwa.example/m.json#arc3",
                "metadata_hash": digest,
            },
            idempotency_key=f"asset-mint:{asset.public_id}",
            on_confirmed="assets.services.asset_mint_confirmed",
            on_failed="assets.services.asset_mint_failed",
        )
    if process_here:
        outbox_process(chain_tx_id=row.pk)

    def live():
        asset.refresh_from_db()
        return asset.status == Asset.Status.LIVE

    wait_until(live, timeout, message=f"asset {asset.pk} to go live")
    return asset


def transfer_processed(*, asset_id: int, sender: str, receiver: str, amount: int) -> ChainTransaction:
    """Move units on chain through the outbox, processed in this process (no callback)."""
    with transaction.atomic():
        row = outbox_request(
            kind="asset_transfer",
            idempotency_key=uuid.uuid4().hex,
            payload={"asset_id": asset_id, "sender": sender, "receiver": receiver, "amount": amount},
        )
    outbox_process(chain_tx_id=row.pk)
    row.refresh_from_db()
    return row
