"""Endpoint secrets and signatures.

A secret is `whsec_` + 32 random bytes (URL-safe base64). It is sealed with the custody
master key (`chain.custody.get_backend().wrap`, AES-GCM, the endpoint's public id as
associated data so a sealed secret cannot be moved to another endpoint; the key id is kept
for rotation) and opened only by the worker to sign a delivery. The signature is
Standard-Webhooks-like: `v1=` + hex HMAC-SHA256(secret, f"{timestamp}.{body}")."""

import hashlib
import hmac
import secrets

from chain.custody import get_backend

PREFIX = "whsec_"


def secret_generate() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def _context(public_id) -> bytes:
    return b"webhook-endpoint|" + str(public_id).encode()


def secret_seal(*, public_id, secret: str) -> tuple[str, bytes, bytes]:
    """(key id, ciphertext, nonce) for the endpoint row."""
    return get_backend().wrap(secret.encode(), context=_context(public_id))


def secret_open(endpoint) -> str:
    return (
        get_backend()
        .unwrap(
            key_id=endpoint.secret_key_id,
            wrapped=bytes(endpoint.secret_wrapped),
            nonce=bytes(endpoint.secret_nonce),
            context=_context(endpoint.public_id),
        )
        .decode()
    )


def signature(*, secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()
