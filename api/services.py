"""Writes of personal access tokens: create (the secret is returned once and never
stored), revoke, and the last-used stamp."""

import hashlib
import secrets
import string
from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from accounts.notifications import notify
from compliance.audit import audit_record

from .models import ApiToken

TOKEN_PREFIX = "rwa"
PREFIX_LENGTH = 8
PREFIX_ALPHABET = string.ascii_letters + string.digits
MAX_LIFETIME = timedelta(days=365)
# last_used_at is written at most this often per token (one UPDATE a minute, not one a request).
LAST_USED_RESOLUTION = timedelta(minutes=1)


def secret_sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _token_text(prefix: str, secret: str) -> str:
    return f"{TOKEN_PREFIX}_{prefix}_{secret}"


def _clean(*, name: str, scopes: list[str], expires_at: datetime, now: datetime) -> tuple[str, str]:
    errors: dict[str, str] = {}
    name = (name or "").strip()
    if not name:
        errors["name"] = "Name the token, e.g. after the program that uses it."
    elif len(name) > 60 or "\x00" in name:
        errors["name"] = "Use at most 60 characters."
    chosen = [s for s in ApiToken.Scope.values if s in set(scopes or [])]
    if not chosen or len(chosen) != len(set(scopes)):
        errors["scopes"] = "Choose read, trade or both."
    if expires_at <= now:
        errors["expires_at"] = "The expiry must be in the future."
    elif expires_at > now + MAX_LIFETIME:
        errors["expires_at"] = "A token lives at most one year."
    if errors:
        raise ValidationError(errors)
    return name, " ".join(chosen)


def api_token_create(*, user, name: str, scopes: list[str], expires_at: datetime) -> tuple[ApiToken, str]:
    """A new token of `user`: (the row, the token text `rwa_<prefix>_<secret>`). The text
    is returned here only; the row keeps the prefix and the secret's SHA-256. The owner
    is mailed (someone with their session could otherwise mint a token unseen)."""
    now = timezone.now()
    name, scope_text = _clean(name=name, scopes=scopes, expires_at=expires_at, now=now)
    secret = secrets.token_urlsafe(32)
    for _attempt in range(5):  # 62^8 prefixes: a collision is rare, never repeated 5 times
        prefix = "".join(secrets.choice(PREFIX_ALPHABET) for _ in range(PREFIX_LENGTH))
        try:
            with transaction.atomic(durable=True):
                token = ApiToken(
                    user=user,
                    name=name,
                    scopes=scope_text,
                    prefix=prefix,
                    secret_sha256=secret_sha256(secret),
                    created_at=now,
                    expires_at=expires_at,
                )
                token.full_clean()
                token.save(force_insert=True)
                audit_record(
                    actor=user,
                    action="api_token.created",
                    target=token,
                    after={"prefix": prefix, "scopes": scope_text, "expires_at": expires_at.isoformat()},
                )
                notify(
                    user=user,
                    subject="A new API token was created",
                    body=(
                        f"An API token named “{name}” ({prefix}, {scope_text}) was created for your account; it "
                        f"expires on {expires_at:%d %b %Y}. If this was not you, revoke it at once and change "
                        "your password."
                    ),
                    path="/accounts/api-tokens/",
                )
        except IntegrityError:
            continue
        return token, _token_text(prefix, secret)
    raise RuntimeError("could not find a free token prefix")


@transaction.atomic(durable=True)
def api_token_revoke(*, token: ApiToken, actor) -> ApiToken:
    """Revoke the token now (idempotent: a revoked token keeps its first revocation time)."""
    if actor is None or actor.pk != token.user_id:
        raise ValidationError("Only the token's owner can revoke it.", code="not_owner")
    now = timezone.now()
    if ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=now):
        audit_record(actor=actor, action="api_token.revoked", target=token, after={"prefix": token.prefix})
    token.refresh_from_db(fields=["revoked_at"])
    return token


def api_token_touch(*, token: ApiToken, now: datetime | None = None) -> None:
    """Stamp last_used_at, at most once per LAST_USED_RESOLUTION (a conditional update,
    so concurrent requests write it once)."""
    now = now or timezone.now()
    if token.last_used_at is not None and token.last_used_at > now - LAST_USED_RESOLUTION:
        return
    stale = Q(last_used_at__isnull=True) | Q(last_used_at__lte=now - LAST_USED_RESOLUTION)
    ApiToken.objects.filter(stale, pk=token.pk).update(last_used_at=now)
    token.last_used_at = now
