"""Helpers of the API tests: tokens, a client that sends a bearer token, order bodies,
and the problem+json assertion."""

import json
import uuid
from datetime import timedelta

from django.test import Client
from django.utils import timezone

from api.services import api_token_create

FUNDS = 1_000_000  # 10,000.00 EUR


def make_token(user, scopes=("read", "trade"), days=30):
    return api_token_create(
        user=user, name="test", scopes=list(scopes), expires_at=timezone.now() + timedelta(days=days)
    )


class ApiClient:
    """django.test.Client with `Authorization: Bearer <token>` on every request."""

    def __init__(self, secret: str | None = None, **client_kwargs):
        self.client = Client(**client_kwargs)
        self.secret = secret

    def _headers(self, headers):
        out = dict(headers or {})
        if self.secret is not None:
            out.setdefault("Authorization", f"Bearer {self.secret}")
        return out

    def get(self, path, params=None, headers=None):
        return self.client.get(path, params or {}, headers=self._headers(headers))

    def post(self, path, body=None, headers=None):
        data = json.dumps(body) if body is not None and not isinstance(body, str | bytes) else (body or "")
        return self.client.post(path, data, content_type="application/json", headers=self._headers(headers))


def order_body(asset, **overrides):
    body = {"asset": str(asset.public_id), "side": "buy", "quantity": 2, "limit_price_minor": 10_000}
    body.update(overrides)
    return body


def key() -> dict:
    return {"Idempotency-Key": uuid.uuid4().hex}


def assert_problem(response, status: int, slug: str | None = None) -> dict:
    assert response.status_code == status, (response.status_code, response.content[:500])
    assert response["Content-Type"] == "application/problem+json", response["Content-Type"]
    body = response.json()
    assert body["status"] == status
    assert {"type", "title", "status", "detail", "instance"} <= set(body)
    if slug is not None:
        assert body["type"] == f"urn:rwa:problem:{slug}", body
    return body
