"""ARC-3 token metadata for an asset. Built once, at approval; the exact bytes are
stored and served unchanged for ever, and their SHA-256 is the ASA's metadata hash."""

import hashlib
import json

from django.conf import settings
from django.urls import reverse

ARC3_URL_MAX_BYTES = 96


def metadata_url(asset) -> str:
    url = settings.PUBLIC_BASE_URL.rstrip("/") + reverse("assets:arc3", args=[asset.public_id.hex]) + "#arc3"
    if len(url.encode()) > ARC3_URL_MAX_BYTES:
        raise ValueError(f"ARC-3 URL {url!r} is longer than {ARC3_URL_MAX_BYTES} bytes; shorten PUBLIC_BASE_URL.")
    return url


def metadata_document(asset, documents) -> dict:
    return {
        "name": asset.asset_name,
        "unitName": asset.unit_name,
        "decimals": 0,
        "description": asset.description,
        "properties": {
            "asset": asset.name,
            "category": asset.category,
            "location": asset.location,
            "valuation": {
                "amount_minor": asset.valuation_minor,
                "currency": asset.currency,
                "date": asset.valuation_date.isoformat(),
            },
            "total_fractions": asset.total_fractions,
            "issuer": asset.issuer.get_full_name(),
            "documents": [
                {"kind": d.kind, "title": d.title, "sha256": d.sha256, "size": d.size, "content_type": d.content_type}
                for d in sorted(documents, key=lambda d: (d.kind, d.sha256))
            ],
        },
    }


def metadata_bytes(document: dict) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def metadata_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
