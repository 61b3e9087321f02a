"""Webhooks: a user's endpoints, the events recorded for them and one delivery per
(event, endpoint). Events are written in the transaction of the change that causes them
(`webhooks.events`), deliveries are sent after commit by the worker (`webhooks.services`)."""

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone


class EventKind(models.TextChoices):
    ORDER_ACCEPTED = "order.accepted", "Order accepted (primary purchase or trade order)"
    ORDER_FILLED = "order.filled", "Trade order filled"
    ORDER_CANCELLED = "order.cancelled", "Trade order cancelled"
    ORDER_EXPIRED = "order.expired", "Trade order expired (good till date)"
    ORDER_SETTLED = "order.settled", "Primary purchase settled on chain"
    TRADE_SETTLED = "trade.settled", "Trade settled on chain"
    DEPOSIT_BOOKED = "deposit.booked", "Deposit booked"
    WITHDRAWAL_PAID = "withdrawal.paid", "Withdrawal paid"
    DISTRIBUTION_PAID = "distribution.paid", "Distribution paid"


class WebhookEndpoint(models.Model):
    """Where a user wants events POSTed. The signing secret is sealed with the custody
    master key (`webhooks.signing`); the plaintext is shown once, when it is made."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="webhook_endpoints")
    url = models.CharField(max_length=2000)
    events = models.JSONField(default=list, help_text="The event kinds this endpoint receives.")
    secret_key_id = models.CharField(max_length=64, editable=False)
    secret_wrapped = models.BinaryField(editable=False)
    secret_nonce = models.BinaryField(editable=False)
    created_at = models.DateTimeField(default=timezone.now)
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=500, blank=True)
    consecutive_failures = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return f"Webhook {self.public_id.hex[:8]} → {self.url[:80]}"

    @property
    def active(self) -> bool:
        return self.disabled_at is None


class WebhookEvent(models.Model):
    """One event for one user; `public_id` is the id receivers deduplicate on (the same
    on every retry and every endpoint). Recorded only when the user has an active endpoint
    subscribed to the kind."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=40, choices=EventKind.choices)
    payload = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.kind} {self.public_id}"


class WebhookDelivery(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed"

    event = models.ForeignKey(WebhookEvent, on_delete=models.CASCADE, related_name="deliveries")
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "webhook deliveries"
        constraints = [models.UniqueConstraint(fields=["event", "endpoint"], name="webhook_delivery_once")]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="webhook_delivery_due")]
        permissions = [("retry_webhookdelivery", "Can retry a webhook delivery now")]

    def __str__(self) -> str:
        return f"Delivery {self.pk} ({self.status})"
