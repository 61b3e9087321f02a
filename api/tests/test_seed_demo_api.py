"""`manage.py seed_demo_api`: a read-only token for the demo investor, printed, that reads the
portfolio and cannot trade; a second start replaces it (the first stops working)."""

import io
import re

import pytest
from django.core.management import call_command

pytestmark = pytest.mark.django_db


def _seed(client) -> str:
    out = io.StringIO()
    call_command("seed_demo_api", stdout=out)
    text = out.getvalue()
    assert "/api/v1/docs" in text
    found = re.search(r"Bearer (rwa_\S+)'", text)
    assert found, text
    return found.group(1)


def test_the_demo_token_reads_cannot_trade_and_is_replaced_at_each_start(client):
    call_command("seed_demo", stdout=io.StringIO())
    first = _seed(client)
    auth = {"HTTP_AUTHORIZATION": f"Bearer {first}"}
    assert client.get("/api/v1/me/portfolio", **auth).status_code == 200
    placed = client.post(
        "/api/v1/me/trade-orders", data={}, content_type="application/json", HTTP_IDEMPOTENCY_KEY="k1", **auth
    )
    assert placed.status_code == 403
    second = _seed(client)
    assert second != first
    assert client.get("/api/v1/me/portfolio", HTTP_AUTHORIZATION=f"Bearer {first}").status_code == 401
    assert client.get("/api/v1/me/portfolio", HTTP_AUTHORIZATION=f"Bearer {second}").status_code == 200
