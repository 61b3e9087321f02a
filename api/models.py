"""Personal access tokens of the public API (docs/api.md). The secret is shown once, when
the token is created; only its SHA-256 is stored, beside an 8-character prefix that
finds the row and identifies the token in lists."""

from django.conf import settings
from django.db import models
from django.utils import timezone


class ApiToken(models.Model):
    class Scope(models.TextChoices):
        READ = "read", "Read: assets, your portfolio, orders, trades, cash and distributions"
        TRADE = "trade", "Trade: place and cancel secondary-market orders"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=60)
    # Space-separated Scope values, as OAuth writes scopes ("read trade").
    scopes = models.CharField(max_length=32)
    prefix = models.CharField(max_length=8, unique=True)
    secret_sha256 = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    expires_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["user", "-created_at"], name="api_token_user_idx")]

    def __str__(self):
        return f"API token {self.prefix} ({self.name})"

    @property
    def scope_list(self) -> list[str]:
        return self.scopes.split()

    def has_scope(self, scope: str) -> bool:
        return scope in self.scope_list

    def is_usable(self, at=None) -> bool:
        at = at or timezone.now()
        return self.revoked_at is None and self.expires_at > at
