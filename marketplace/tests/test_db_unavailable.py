"""A request whose database connection dies while it is being served: 503 "please try
again" (config/db_unavailable.py), never a 500 or a misleading 400, and nothing
half-written. The backend is ended for real with pg_terminate_backend from another
connection, at the point named in each test."""

import pytest
from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore
from django.db import connection
from django.urls import reverse

from marketplace import services, views
from marketplace.models import JournalEntry, PayoutAccount, Withdrawal
from marketplace.selectors import cash_balances
from tests.plugins.db_faults import terminate_this_thread_connection

from .factories import usable_payout_account

pytestmark = pytest.mark.django_db(transaction=True)
MESSAGE = "The service is briefly unavailable; please try again."


@pytest.fixture
def funded_investor(client, investor, fund):
    fund(investor, 100_00)
    usable_payout_account(investor)
    client.force_login(investor)
    return investor


def _balances(user):
    return [(b.currency, b.available_minor, b.held_minor) for b in cash_balances(user=user)]


def _withdraw(client, **headers):
    account = PayoutAccount.objects.values_list("public_id", flat=True).get()
    data = {"amount": "10.00", "currency": "EUR", "payout_account": str(account)}
    return client.post(reverse("marketplace:withdrawal_create"), data, **headers)


def _kill_inside_the_transaction(monkeypatch):
    """The withdrawal's transaction has written its row; then the connection dies."""
    real = services.ledger_post

    def dying_ledger_post(**kwargs):
        assert connection.in_atomic_block and Withdrawal.objects.exists()  # half-way through
        terminate_this_thread_connection()
        return real(**kwargs)

    monkeypatch.setattr(services, "ledger_post", dying_ledger_post)


@pytest.mark.parametrize("htmx", [False, True], ids=["page", "htmx"])
def test_connection_lost_mid_transaction_answers_503_try_again_and_writes_nothing(
    client, funded_investor, monkeypatch, htmx
):
    before = _balances(funded_investor)
    entries = JournalEntry.objects.count()
    _kill_inside_the_transaction(monkeypatch)

    response = _withdraw(client, **({"HTTP_HX_REQUEST": "true"} if htmx else {}))

    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    html = response.content.decode()
    assert MESSAGE in html and "session was deleted" not in html
    if htmx:  # a notice at the top of the page; the form stays as it was
        assert response["HX-Retarget"] == "#main" and response["HX-Reswap"] == "afterbegin"
        assert "<html" not in html and 'role="alert"' in html
    else:
        assert '<p class="code">503</p>' in html
    # The broken connection was closed: the next query opens a fresh one.
    assert Withdrawal.objects.count() == 0
    assert JournalEntry.objects.count() == entries
    assert _balances(funded_investor) == before
    # And the same form sent again goes through once.
    monkeypatch.undo()
    assert _withdraw(client).status_code == 302
    assert Withdrawal.objects.count() == 1


def test_connection_lost_before_the_session_save_answers_503_not_a_misleading_400(client, funded_investor, monkeypatch):
    """The withdrawal committed, then the connection died before SessionMiddleware saved
    the session: Django's session backend reports that failed UPDATE as a deleted session
    (SessionInterrupted, 400 "The request's session was deleted before the request
    completed"). It answers 503 instead; the withdrawal is recorded once."""
    real = views.messages.success

    def success_then_die(request, message):
        real(request, message)
        terminate_this_thread_connection()

    monkeypatch.setattr(views.messages, "success", success_then_die)
    client.raise_request_exception = False  # answer as a server does, not re-raise

    response = _withdraw(client)

    assert response.status_code == 503
    assert MESSAGE in response.content.decode()
    assert "session was deleted" not in response.content.decode()
    assert Withdrawal.objects.count() == 1  # a fresh connection
    assert client.get(reverse("marketplace:portfolio")).status_code == 200  # still signed in


def test_connection_lost_at_the_session_commit_answers_503_not_a_misleading_400(client, funded_investor, monkeypatch):
    """The withdrawal committed; SessionMiddleware's UPDATE of the session ran, and the
    connection died before its COMMIT (a commit is not a query, so nothing else noted the
    error). Django's session store calls any error there a deleted session (400, the one
    seen in the chaos run); config/sessions.py lets it through as the database error it
    is, so the answer is 503 and the user stays signed in."""
    real_save = DatabaseSessionStore.save

    def kill_after_update(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if sql.startswith('UPDATE "django_session"'):
            terminate_this_thread_connection()
        return result

    def save_then_die_before_commit(self, must_create=False):
        with connection.execute_wrapper(kill_after_update):
            return real_save(self, must_create=must_create)

    monkeypatch.setattr(DatabaseSessionStore, "save", save_then_die_before_commit)
    client.raise_request_exception = False  # answer as a server does, not re-raise

    response = _withdraw(client)

    assert response.status_code == 503
    assert MESSAGE in response.content.decode()
    assert "session was deleted" not in response.content.decode()
    monkeypatch.undo()
    assert Withdrawal.objects.count() == 1  # committed before the session save failed
    assert client.get(reverse("marketplace:portfolio")).status_code == 200  # still signed in
