"""Property-based run of the committed OpenAPI document against the app in-process
(WSGI): schemathesis generates requests for the public GET operations, valid and not,
and checks that none is a 5xx and that every answer conforms to the document (problem
shapes included). Bounded to stay well under a minute in `make test`."""

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
