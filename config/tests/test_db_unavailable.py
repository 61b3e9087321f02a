"""A kept database connection that dies between requests (database restarted, idle
connections dropped): with CONN_HEALTH_CHECKS the next request gets a fresh connection;
without them that request fails. The requests go through Django's real WSGI handler in
this thread, as a web server's thread runs them (request_started/finished and their
connection rules included; the test client leaves those out)."""

import pytest
from django.core.handlers.wsgi import WSGIHandler
from django.db import connection
from django.test import Client, RequestFactory

from accounts.tests.factories import UserFactory
from config.settings.base import database_from_env
from tests.plugins.db_faults import terminate_this_thread_connection

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def kept_connection():
    """The default connection as production keeps it: CONN_MAX_AGE 60 s."""
    saved = {k: connection.settings_dict[k] for k in ("CONN_MAX_AGE", "CONN_HEALTH_CHECKS")}

    def configure(*, health_checks: bool):
        connection.close()
        connection.settings_dict.update(CONN_MAX_AGE=60, CONN_HEALTH_CHECKS=health_checks)

    yield configure
    connection.close()
    connection.settings_dict.update(saved)


def _signed_in_cookie() -> str:
    client = Client()
    client.force_login(UserFactory.create(email="kept@example.com"))
    return f"sessionid={client.cookies['sessionid'].value}"


def _serve(path: str, cookie: str) -> int:
    """One request as a WSGI server serves it; returns the status code."""
    environ = RequestFactory().get(path, HTTP_COOKIE=cookie).environ
    statuses: list[str] = []

    def start_response(status, headers, exc_info=None):
        statuses.append(status)
        return lambda data: None

    response = WSGIHandler()(environ, start_response)
    response.close()  # request_finished, as the server sends it
    return int(statuses[0].split()[0])


def _requests_after_the_connection_is_killed(cookie: str) -> list[int]:
    assert _serve("/market/portfolio/", cookie) == 200
    pid = connection.connection.info.backend_pid
    assert _serve("/market/portfolio/", cookie) == 200
    assert connection.connection.info.backend_pid == pid  # kept across requests
    terminate_this_thread_connection()
    return [_serve("/market/portfolio/", cookie) for _ in range(5)]


def test_every_mode_checks_a_kept_connection_before_using_it():
    assert database_from_env("postgres://u@h:5432/d")["CONN_HEALTH_CHECKS"] is True
    assert database_from_env("sqlite:////tmp/x.sqlite3")["CONN_HEALTH_CHECKS"] is True


def test_a_killed_idle_connection_is_replaced_before_the_next_request_uses_it(kept_connection):
    cookie = _signed_in_cookie()
    kept_connection(health_checks=True)

    statuses = _requests_after_the_connection_is_killed(cookie)

    assert statuses == [200] * 5


def test_without_health_checks_the_next_request_fails(kept_connection):
    """The control: the scenario above does break a request when the check is off (the
    503 of config/db_unavailable.py rather than a 500; then the connection is replaced)."""
    cookie = _signed_in_cookie()
    kept_connection(health_checks=False)

    statuses = _requests_after_the_connection_is_killed(cookie)

    assert statuses == [503, 200, 200, 200, 200]
