"""Property-based run of the committed OpenAPI document against the app in-process
(WSGI): schemathesis generates requests for every operation, valid and not — the public
ones anonymously, the others with a token of both scopes and again without one — and
checks that none is a 5xx, that every answer conforms to the document (problem shapes
included) and that no operation that declares authentication serves a request without a
token. Bounded to stay under a minute in `make test`."""

import json
from pathlib import Path

import pytest
import schemathesis
from django.conf import settings
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from marketplace.models import Market
from marketplace.tests.factories import OfferingFactory

pytestmark = [pytest.mark.django_db, pytest.mark.timeout(120)]

DOCUMENT = json.loads((Path(settings.BASE_DIR) / "api" / "openapi-v1.json").read_text())
schema = schemathesis.openapi.from_dict(DOCUMENT).include(tag="public", method="GET")
schema.app = get_wsgi_application()


@pytest.fixture(autouse=True)
def keep_the_test_connection():
    """The WSGI handler closes connections at each request's start and end; inside the
    test's transaction that would close it (Django's test client disconnects the same
    receivers)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture(autouse=True)
def catalogue(platform_accounts):
    for _ in range(3):
        offering = OfferingFactory()
        Market.objects.create(asset=offering.asset, currency="EUR", last_price_minor=10_500)


@schema.parametrize()
@hypothesis_settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
def test_public_operations_conform_and_never_fail(case):
    case.call_and_validate(checks=[not_a_server_error, response_schema_conformance])


# Every authenticated operation, with a token of both scopes: generated inputs (valid and
# not) never give a 5xx and every answer conforms to the document.
private = schemathesis.openapi.from_dict(DOCUMENT).exclude(tag="public")
private.app = schema.app


@pytest.fixture
def bearer(db):
    from marketplace.tests.factories import verified_investor

    from .helpers import make_token

    _token, secret = make_token(verified_investor())
    return f"Bearer {secret}"


@private.parametrize()
@hypothesis_settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
def test_authenticated_operations_conform_and_never_fail(case, bearer):
    case.headers = {**(case.headers or {}), "Authorization": bearer}
    case.call_and_validate(checks=[not_a_server_error, response_schema_conformance])


@private.parametrize()
@hypothesis_settings(
    max_examples=3, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
def test_authenticated_operations_refuse_a_request_without_a_token(case):
    case.headers = {k: v for k, v in (case.headers or {}).items() if k.lower() != "authorization"}
    response = case.call()
    # Refused, never served: 401 for a well-formed request; a path the URL patterns do not
    # match is 404 and another method 405 before authentication; never a 2xx or a 5xx.
    assert response.status_code in (401, 403, 404, 405), (case.method, case.path, response.status_code)
