"""Back office: endpoints and deliveries, read only; "Retry now" for staff with the
webhooks.retry_webhookdelivery permission (checked again in the service). Secrets are
never shown (they are sealed; the columns are not listed)."""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest

from config.backoffice import ReadOnlyAdmin

from . import services
from .models import WebhookDelivery, WebhookEndpoint


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(ReadOnlyAdmin):
    list_display = ["public_id", "user", "url", "created_at", "disabled_at", "consecutive_failures"]
    list_filter = ["disabled_at"]
    search_fields = ["user__email", "url", "public_id"]
    fields = readonly_fields = (
        "public_id",
        "user",
        "url",
        "events",
        "created_at",
        "disabled_at",
        "disabled_reason",
        "consecutive_failures",
    )
    list_select_related = ["user"]


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    list_display = [
        "pk",
        "event_kind",
        "event_id",
        "endpoint",
        "status",
        "attempts",
        "last_status_code",
        "next_attempt_at",
        "delivered_at",
    ]
    list_filter = ["status", "event__kind"]
    search_fields = ["event__public_id", "endpoint__url", "endpoint__user__email"]
    list_select_related = ["event", "endpoint"]
    fields = readonly_fields = (
        "event",
        "endpoint",
        "status",
        "attempts",
        "next_attempt_at",
        "last_status_code",
        "last_error",
        "created_at",
        "delivered_at",
    )
    actions = ["retry_now"]

    @admin.display(description="event")
    def event_kind(self, obj: WebhookDelivery) -> str:
        return obj.event.kind

    @admin.display(description="event id")
    def event_id(self, obj: WebhookDelivery) -> str:
        return str(obj.event.public_id)

    def has_retry_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(services.RETRY_PERMISSION)

    @admin.action(description="Retry now", permissions=["retry"])
    def retry_now(self, request: HttpRequest, queryset: QuerySet[WebhookDelivery]) -> None:
        try:
            done = services.deliveries_retry(delivery_ids=queryset.values_list("pk", flat=True), actor=request.user)
        except PermissionDenied as exc:
            messages.error(request, str(exc))
            return
        messages.success(request, f"{done} deliveries queued again.")
