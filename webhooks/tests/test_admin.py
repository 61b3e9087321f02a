import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from accounts.tests.factories import UserFactory
from webhooks.models import WebhookDelivery

pytestmark = pytest.mark.django_db


def test_back_office_lists_read_only_and_retry_now_needs_the_permission(client, endpoint_with_secret, record):
    endpoint, secret = endpoint_with_secret
    delivery = record(endpoint)
    WebhookDelivery.objects.filter(pk=delivery.pk).update(status="failed", attempts=6, next_attempt_at=None)
    viewer = UserFactory(roles=[], is_staff=True)
    viewer.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_webhookendpoint", "view_webhookdelivery"])
    )
    client.force_login(viewer)
    for name in ("webhooks_webhookendpoint_changelist", "webhooks_webhookdelivery_changelist"):
        body = client.get(reverse(f"admin:{name}")).content.decode()
        assert secret not in body
    page = client.get(reverse("admin:webhooks_webhookdelivery_change", args=[delivery.pk])).content.decode()
    assert 'name="_save"' not in page
    changelist = reverse("admin:webhooks_webhookdelivery_changelist")
    assert "retry_now" not in client.get(changelist).content.decode()
    viewer.user_permissions.add(Permission.objects.get(codename="retry_webhookdelivery"))
    assert "retry_now" in client.get(changelist).content.decode()
    client.post(changelist, {"action": "retry_now", "_selected_action": [delivery.pk]})
    delivery.refresh_from_db()
    assert delivery.status == "pending"
