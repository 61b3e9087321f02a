"""/me/webhooks/: add (secret once), list, deliveries, disable, enable, delete."""

import pytest
from django.urls import reverse

from marketplace.tests.factories import verified_investor
from webhooks import services
from webhooks.models import WebhookEndpoint

pytestmark = pytest.mark.django_db


def test_adding_an_endpoint_shows_its_secret_once_and_stores_it_sealed(client, user, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE = False
    client.force_login(user)
    response = client.post(
        reverse("webhooks:endpoints"),
        {"url": "https://hooks.example.com/rwa", "events": ["order.filled", "trade.settled"]},
    )
    assert response.status_code == 201
    secret = response.context["secret"]
    assert secret.startswith("whsec_") and secret in response.content.decode()
    assert response["Cache-Control"].startswith("max-age=0") or "no-store" in response["Cache-Control"]
    endpoint = WebhookEndpoint.objects.get(user=user)
    assert endpoint.events == ["order.filled", "trade.settled"]
    assert secret.encode() not in bytes(endpoint.secret_wrapped)
    from webhooks.signing import secret_open

    assert secret_open(endpoint) == secret
    page = client.get(reverse("webhooks:endpoints")).content.decode()
    assert "hooks.example.com" in page and secret not in page


@pytest.mark.parametrize(
    "url",
    [
        "https://" + "a" * 10_000 + ".com/",
        "https://example.com/\x00",
        "javascript:alert(1)",
        "file:///etc/passwd",
        "http://example.com/",
        "https://10.0.0.1/",
        "https://localhost/",
    ],
)
def test_hostile_urls_are_a_form_error_and_nothing_is_stored(client, user, settings, url):
    settings.WEBHOOKS_ALLOW_PRIVATE = False
    client.force_login(user)
    response = client.post(reverse("webhooks:endpoints"), {"url": url, "events": ["order.filled"]})
    assert response.status_code == 422
    assert response.context["form"].errors["url"]
    assert not WebhookEndpoint.objects.exists()


def test_unknown_events_are_a_form_error(client, user):
    client.force_login(user)
    response = client.post(reverse("webhooks:endpoints"), {"url": "https://e.example/", "events": ["x.y"]})
    assert response.status_code == 422 and not WebhookEndpoint.objects.exists()


def test_another_users_endpoint_is_a_404_everywhere(client, user, receiver):
    endpoint, _ = services.endpoint_create(user=user, url=receiver.url, events=["order.filled"])
    intruder = verified_investor()
    client.force_login(intruder)
    assert client.get(reverse("webhooks:endpoint", args=[endpoint.public_id])).status_code == 404
    for name in ("disable", "enable", "delete"):
        assert client.post(reverse(f"webhooks:{name}", args=[endpoint.public_id])).status_code == 404
    assert receiver.url not in client.get(reverse("webhooks:endpoints")).content.decode()
    endpoint.refresh_from_db()
    assert endpoint.disabled_at is None


def test_the_owner_sees_deliveries_and_can_disable_enable_and_delete(client, user, receiver, record):
    endpoint, _ = services.endpoint_create(user=user, url=receiver.url, events=["deposit.booked"])
    delivery = record(endpoint)
    client.force_login(user)
    page = client.get(reverse("webhooks:endpoint", args=[endpoint.public_id])).content.decode()
    assert str(delivery.event.public_id) in page and "deposit.booked" in page
    client.post(reverse("webhooks:disable", args=[endpoint.public_id]))
    endpoint.refresh_from_db()
    assert endpoint.disabled_at is not None
    client.post(reverse("webhooks:enable", args=[endpoint.public_id]))
    endpoint.refresh_from_db()
    assert endpoint.disabled_at is None
    assert client.get(reverse("webhooks:disable", args=[endpoint.public_id])).status_code == 405
    client.post(reverse("webhooks:delete", args=[endpoint.public_id]))
    assert not WebhookEndpoint.objects.exists()


def test_pages_need_a_signed_in_user(client):
    response = client.get(reverse("webhooks:endpoints"))
    assert response.status_code == 302 and "login" in response["Location"]


def test_changes_are_rate_limited(client, user, settings):
    settings.WEBHOOKS_RATE_LIMIT = (2, 3600)
    client.force_login(user)
    codes = [
        client.post(reverse("webhooks:endpoints"), {"url": "javascript:x", "events": ["order.filled"]}).status_code
        for _ in range(3)
    ]
    assert codes == [422, 422, 429]


def test_the_profile_links_to_webhooks(client, user):
    client.force_login(user)
    assert reverse("webhooks:endpoints") in client.get(reverse("accounts:profile")).content.decode()
