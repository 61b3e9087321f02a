from django.db.models import QuerySet
from django.http import Http404

from .models import WebhookDelivery, WebhookEndpoint


def endpoints_for_user(*, user) -> QuerySet[WebhookEndpoint]:
    return WebhookEndpoint.objects.filter(user=user).order_by("created_at", "pk")


def endpoint_get_for_user(*, public_id, user) -> WebhookEndpoint:
    """The user's endpoint; 404 for anyone else's (and for a malformed id)."""
    endpoint = WebhookEndpoint.objects.filter(public_id=public_id, user=user).first()
    if endpoint is None:
        raise Http404("No such webhook endpoint.")
    return endpoint


def recent_deliveries(*, endpoint: WebhookEndpoint, limit: int = 20) -> QuerySet[WebhookDelivery]:
    return (
        WebhookDelivery.objects.filter(endpoint=endpoint).select_related("event").order_by("-created_at", "-pk")[:limit]
    )
