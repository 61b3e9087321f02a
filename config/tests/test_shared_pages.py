"""config/shared_pages.py on the catalogue: one rendering for every anonymous visitor, each
with a working CSRF token of their own; never for a signed-in visitor or one with a
flash message waiting."""

import re

import pytest
from django.test import Client
from django.urls import reverse

from config.shared_pages import TOKEN_MARKER
from marketplace.tests.factories import verified_investor

pytestmark = pytest.mark.django_db


def token(html: str) -> str:
    found = re.search(r'"X-CSRFToken": "([^"]+)"', html)
    assert found is not None, html[:500]
    return found.group(1)


@pytest.fixture(autouse=True)
def _cached(settings):
    settings.CATALOGUE_CACHE_SECONDS = 300


def test_each_anonymous_visitor_gets_their_own_working_token():
    url = reverse("assets:catalogue")
    first, second = Client(enforce_csrf_checks=True), Client(enforce_csrf_checks=True)
    one, two = first.get(url).content.decode(), second.get(url).content.decode()
    assert TOKEN_MARKER not in one + two and token(one) != token(two)
    assert "csrftoken" in first.cookies and "csrftoken" in second.cookies
    # The token works for the visitor it was given to, and not for another.
    login = reverse("account_login")
    form = {"login": "nobody@example.com", "password": "wrong"}
    assert first.post(login, form, headers={"X-CSRFToken": token(one)}).status_code != 403
    assert second.post(login, form, headers={"X-CSRFToken": "x" * 64}).status_code == 403


def test_a_visitor_with_a_message_waiting_sees_it(client):
    url = reverse("assets:catalogue")
    client.get(url)  # the shared page is cached
    client.force_login(verified_investor())
    client.post(reverse("account_logout"))  # anonymous again, "You have signed out." waiting
    html = client.get(url).content.decode()
    assert "signed out" in html.lower() and "flash" in html
    assert "signed out" not in client.get(url).content.decode().lower()  # shown once, then shared again


def test_signed_in_visitors_get_their_own_page(client):
    url = reverse("assets:catalogue")
    client.get(url)
    investor = verified_investor()
    client.force_login(investor)
    html = client.get(url).content.decode()
    assert investor.email in html and "Sign in" not in html
