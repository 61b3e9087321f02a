import time

import pytest
from django.urls import reverse

from config import health

pytestmark = pytest.mark.django_db


def test_healthz_answers_ok_without_touching_dependencies(client, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get(reverse("healthz"))

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"status": "ok"}
    assert "no-cache" in response["Cache-Control"]


def test_readyz_reports_each_dependency_ok(client):
    response = client.get(reverse("readyz"))

    body = response.json()
    assert response.status_code == 200
    assert body["status"] == "ok"
    assert body["checks"]["database"] == {"status": "ok", "detail": "reachable", "ms": body["checks"]["database"]["ms"]}
    assert body["checks"]["broker"]["status"] == "ok"
    assert "redis://" not in response.content.decode()  # no internal address to the public
    assert "no-cache" in response["Cache-Control"]


def test_readyz_shows_staff_the_details(client):
    from accounts.tests.factories import UserFactory

    client.force_login(UserFactory(is_staff=True))
    body = client.get(reverse("readyz")).json()
    assert body["checks"]["database"]["detail"] == "postgresql"
    assert body["checks"]["broker"]["detail"].startswith("redis://")


def test_readyz_is_503_and_fails_fast_when_the_broker_is_down(client, settings, caplog):
    # Given a broker URL on a port where nothing listens
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"

    # When the probe runs
    started = time.monotonic()
    response = client.get(reverse("readyz"))
    elapsed = time.monotonic() - started

    # Then it answers 503 quickly, naming the broker as the failed dependency
    body = response.json()
    assert response.status_code == 503
    assert elapsed < 3, f"readiness probe took {elapsed:.1f}s"
    assert body["status"] == "error"
    assert body["checks"]["broker"]["status"] == "error"
    assert "127.0.0.1:1" not in response.content.decode()  # the address stays in the log
    assert "127.0.0.1:1" in caplog.text and "readiness check broker failed" in caplog.text
    assert body["checks"]["database"]["status"] == "ok"


def test_readyz_is_503_when_the_database_check_fails(client, monkeypatch):
    def database_down():
        raise ConnectionError("database unreachable")

    monkeypatch.setattr(health, "check_database", database_down)

    response = client.get(reverse("readyz"))

    body = response.json()
    assert response.status_code == 503
    assert body["checks"]["database"] == {
        "status": "error",
        "detail": "ConnectionError (see the server log)",
        "ms": body["checks"]["database"]["ms"],
    }
    assert body["checks"]["broker"]["status"] == "ok"


def test_probes_refuse_writes(client):
    assert client.post(reverse("healthz")).status_code == 405
    assert client.post(reverse("readyz")).status_code == 405
