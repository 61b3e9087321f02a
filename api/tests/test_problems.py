"""Every failure under /api/ is an RFC 9457 problem (application/problem+json with type,
title, status, detail, instance): unknown paths and methods, validation with field
paths, authentication, scope, refusals with reason codes, an unexpected exception and a
lost database."""

import pytest
from django.db import OperationalError

from .helpers import assert_problem, key, order_body

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("path", ["/api/", "/api/v1/", "/api/v1/nope", "/api/v2/assets", "/api/v1/assets/"])
def test_unknown_paths_are_404_problems(anon_api, path):
    body = assert_problem(anon_api.get(path), 404, "not-found")
    assert body["instance"] == path and body["title"] == "Not found"


def test_a_method_the_path_does_not_take_is_a_405_problem(anon_api, alice_api):
    response = anon_api.post("/api/v1/assets", {})
    body = assert_problem(response, 405, "method-not-allowed")
    assert response["Allow"] == "GET" and "GET" in body["detail"]
    assert_problem(alice_api.client.delete("/api/v1/me/trade-orders"), 405)


def test_validation_problem_lists_fields_with_their_paths(alice_api, asset):
    response = alice_api.post("/api/v1/me/trade-orders", {"asset": "x", "side": "hold", "quantity": 1.5}, headers=key())
    body = assert_problem(response, 422, "validation")
    fields = {(e["location"], e["field"]) for e in body["errors"]}
    assert fields == {("body", "asset"), ("body", "side"), ("body", "quantity"), ("body", "limit_price_minor")}
    assert all(e["message"] and e["code"] for e in body["errors"])
    assert "reason_codes" not in body


def test_unreadable_json_is_a_4xx_problem(alice_api):
    response = alice_api.post("/api/v1/me/trade-orders", "{not json", headers=key())
    assert 400 <= response.status_code < 500
    assert response["Content-Type"] == "application/problem+json"


def test_an_unexpected_exception_is_a_500_problem_without_details(anon_api, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr("api.v1.catalogue_assets", boom)
    body = assert_problem(anon_api.get("/api/v1/assets"), 500, "server-error")
    assert "secret" not in body["detail"]


def test_a_lost_database_is_a_503_problem(anon_api, monkeypatch):
    def lost(*args, **kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr("api.v1.catalogue_assets", lost)
    response = anon_api.get("/api/v1/assets")
    assert_problem(response, 503, "unavailable")
    assert response["Retry-After"] == "5"


def test_refusal_problem_has_reason_codes_and_no_field_errors(alice_api, asset):
    body = assert_problem(alice_api.post("/api/v1/me/trade-orders", order_body(asset), headers=key()), 422, "refused")
    assert body["reason_codes"] == ["insufficient_cash"] and "errors" not in body
    assert body["title"] == "The request was refused" and "Not enough cash" in body["detail"]


def test_successes_carry_the_rate_limit_headers(anon_api, settings):
    settings.API_RATE_LIMIT_ADDRESS = (50, 60)
    response = anon_api.get("/api/v1/assets")
    assert response.status_code == 200
    assert (response["RateLimit-Limit"], response["RateLimit-Remaining"]) == ("50", "49")
