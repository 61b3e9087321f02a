"""Links for transaction ids and asset ids: to the block explorer configured for the
network (ALGOD_EXPLORER_TX_URL / ALGOD_EXPLORER_ASSET_URL, templates with {txid} and
{asset_id}), or, where none is (the devnet), to our own small pages that read algod
(chain/views.py). Also what those pages show: a transaction as algod reports it."""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.conf import settings
from django.urls import reverse

from . import gateway
from .models import ChainTransaction

# An Algorand transaction id: base32 (RFC 4648, no padding) of a 32-byte hash.
TXID_RE = re.compile(r"[A-Z2-7]{52}")
MAX_ASSET_ID = 2**64 - 1


def is_txid(value: object) -> bool:
    return isinstance(value, str) and TXID_RE.fullmatch(value) is not None


def tx_url(txid: str) -> str:
    template = settings.ALGOD_EXPLORER_TX_URL
    return template.format(txid=txid) if template else reverse("chain:tx", args=[txid])


def asset_url(asset_id: int) -> str:
    template = settings.ALGOD_EXPLORER_ASSET_URL
    return template.format(asset_id=asset_id) if template else reverse("chain:asset", args=[asset_id])


TX_TYPES = {
    "pay": "Payment",
    "axfer": "Asset transfer",
    "acfg": "Asset configuration",
    "afrz": "Asset freeze",
    "keyreg": "Key registration",
    "appl": "Application call",
}


@dataclass(frozen=True)
class TxView:
    """A transaction as our page shows it."""

    txid: str
    confirmed_round: int | None
    type_label: str
    sender: str
    receiver: str
    asset_id: int | None
    amount: int | None
    fee: int | None
    note: str = ""


def _view(txid: str, info: dict) -> TxView:
    txn = (info.get("txn") or {}).get("txn") or {}
    kind = txn.get("type", "")
    if kind == "axfer":
        receiver, amount, asset_id = txn.get("arcv", ""), txn.get("aamt", 0), txn.get("xaid")
    elif kind == "pay":
        receiver, amount, asset_id = txn.get("rcv", ""), txn.get("amt", 0), None
    elif kind == "acfg":
        receiver, amount = "", (txn.get("apar") or {}).get("t")
        asset_id = txn.get("caid") or info.get("asset-index")
    else:
        receiver, amount, asset_id = "", None, txn.get("xaid") or txn.get("faid")
    return TxView(
        txid=txid,
        confirmed_round=info.get("confirmed-round") or None,
        type_label=TX_TYPES.get(kind, kind or "unknown"),
        sender=txn.get("snd", ""),
        receiver=receiver,
        asset_id=int(asset_id) if asset_id else None,
        amount=int(amount) if amount is not None else None,
        fee=txn.get("fee"),
    )


class TxUnknown(Exception):
    """Neither algod nor the platform knows the transaction."""


def tx_lookup(txid: str) -> tuple[TxView | None, ChainTransaction | None]:
    """(what algod says, our outbox row) for a txid. Raises gateway.AlgodError when algod
    cannot be asked, TxUnknown when nobody knows it. algod keeps confirmed transactions
    only for a while (a network with an indexer has an explorer instead): our own record
    then still gives the round."""
    ours = ChainTransaction.objects.filter(txid=txid).first()
    info = gateway.pending_info(txid)
    if info is None and ours is None:
        raise TxUnknown(txid)
    return (_view(txid, info) if info else None), ours
