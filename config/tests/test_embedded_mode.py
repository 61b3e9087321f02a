"""The embedded mode (`make run`) as newcomers and demos meet it: config.settings.local with
its own defaults (SQLite in a fresh RWA_VAR_DIR, DEBUG off), served by `manage.py
runserver --noreload` as scripts/run_embedded.py starts it, in a process of its own.
The server and its seeding come from bench/embedded_concurrency (the same code measured
the SQLite options, docs/benchmarks.md)."""

import sqlite3

import pytest
from django.db import OperationalError
from django.http import HttpResponse
from django.test import RequestFactory

from bench.embedded_concurrency.run import (
    AMOUNT_MINOR,
    DEPOSIT_MINOR,
    EmbeddedServer,
    books,
    embedded_env,
    fire_withdrawals,
    prepare,
    status_classes,
)
from config.db_unavailable import DatabaseUnavailableMiddleware

PARALLEL = 20


@pytest.fixture(scope="module")
def embedded(tmp_path_factory):
    var_dir = tmp_path_factory.mktemp("embedded-var")
    env = embedded_env(var_dir)
    sessions = prepare(
        var_dir,
        env,
        [
            {"prefix": "many", "investors": PARALLEL, "deposit_minor": DEPOSIT_MINOR},
            {"prefix": "one", "investors": 1, "deposit_minor": DEPOSIT_MINOR},
        ],
    )
    server = EmbeddedServer(env, var_dir / "runserver.log").start()
    yield server, env, sessions
    server.stop()


def _no_server_errors(server, results):
    classes = status_classes(results)
    assert classes["5xx"] == 0 and classes["error"] == 0, (
        classes,
        [r for r in results if r[0] >= 500 or not r[0]],
        server.log()[-4000:],
    )
    assert "database is locked" not in server.log()
    return classes


@pytest.mark.integration
def test_twenty_investors_withdrawing_at_once_are_all_served(embedded):
    server, env, sessions = embedded

    results = fire_withdrawals(server.port, list(sessions["many"].values()))

    classes = _no_server_errors(server, results)
    assert classes["3xx"] == PARALLEL, classes  # each one accepted, none refused as busy
    book = books(env, "many")
    assert book["many"]["withdrawals"] == [1] * PARALLEL
    assert book["many"]["held"] == [AMOUNT_MINOR] * PARALLEL
    assert book["many"]["available"] == [DEPOSIT_MINOR - AMOUNT_MINOR] * PARALLEL
    assert book["ledger_problems"] == []


@pytest.mark.integration
def test_twenty_withdrawals_by_one_investor_at_once_never_overdraw(embedded):
    server, env, sessions = embedded

    results = fire_withdrawals(server.port, list(sessions["one"].values()) * PARALLEL)

    classes = _no_server_errors(server, results)
    assert classes["3xx"] == PARALLEL, classes  # accepted or refused with a message, never an error
    book = books(env, "one")
    assert book["one"]["withdrawals"] == [DEPOSIT_MINOR // AMOUNT_MINOR]  # exactly what 100.00 covers
    assert book["one"]["held"] == [DEPOSIT_MINOR]
    assert book["one"]["available"] == [0]
    assert book["ledger_problems"] == []


@pytest.mark.integration
def test_unknown_url_shows_our_404_page_with_the_csp_not_the_debug_page(embedded):
    server, _, _ = embedded

    for path in ("/nope", "/_errors/404"):  # the DEBUG-only error routes are absent too
        status, headers, body = server.request("GET", path)
        html = body.decode()
        assert status == 404, path
        assert '<p class="code">404</p>' in html and "<h1>Page not found</h1>" in html
        assert "default-src 'self'" in headers.get("Content-Security-Policy", "")
        for debug_text in ("URLconf", "urlpatterns", "backoffice/", "Traceback", "DEBUG = True"):
            assert debug_text not in html, debug_text


@pytest.mark.integration
def test_static_files_are_served_without_debug(embedded):
    server, _, _ = embedded

    status, headers, body = server.request("GET", "/static/css/app.css")
    assert status == 200
    assert headers["Content-Type"].startswith("text/css")
    assert body

    status, _, _ = server.request("GET", "/static/vendor/pico/pico.min.css")
    assert status == 200


def _busy_response(exc):
    """The driver's error as Django raises it (DatabaseErrorWrapper chains the cause)."""
    request = RequestFactory().post("/market/withdrawals/new")
    try:
        try:
            raise sqlite3.OperationalError(str(exc))
        except sqlite3.Error as cause:
            raise exc from cause
    except Exception as raised:
        return DatabaseUnavailableMiddleware(lambda r: HttpResponse()).process_exception(request, raised)


def test_a_write_still_locked_after_the_busy_timeout_answers_503_try_again():
    response = _busy_response(OperationalError("database is locked"))

    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert "The service is briefly unavailable; please try again." in response.content.decode()


def test_other_database_errors_are_left_to_the_500_page():
    assert _busy_response(OperationalError("no such table: marketplace_withdrawal")) is None
    assert _busy_response(ValueError("database is locked")) is None
