"""A session that ends while a page is open (issue 15, defect 1): any HTMX request from
that page sends the whole browser to the sign-in page with `next` = the page, and a
signed-out POST never leaves `next` on a POST-only URL (405 after signing in)."""

from urllib.parse import parse_qs, urlsplit

import pytest
from django.urls import reverse

from accounts.tests.factories import DEFAULT_PASSWORD

pytestmark = pytest.mark.django_db

LOGIN = "/accounts/login/"


def _next_of(url: str) -> str:
    parts = urlsplit(url)
    assert parts.path == LOGIN, url
    return parse_qs(parts.query)["next"][0]


def _offering_page(offering):
    return reverse("marketplace:offering", args=[offering.asset.public_id])


def test_signed_out_htmx_post_redirects_the_browser_to_sign_in_with_the_page_as_next(client, offering):
    page = _offering_page(offering)
    response = client.post(
        reverse("marketplace:order_place", args=[offering.asset.public_id]),
        {"quantity": "5", "idempotency_key": "k1"},
        HTTP_HX_REQUEST="true",
        HTTP_HX_CURRENT_URL=f"http://testserver{page}?tab=buy",
    )
    assert response.status_code == 200
    assert response.content == b""  # nothing for htmx to swap into the panel
    assert _next_of(response["HX-Redirect"]) == f"{page}?tab=buy"


@pytest.mark.parametrize("name", ["marketplace:portfolio", "marketplace:dashboard"])
def test_signed_out_htmx_get_of_any_login_required_view_does_the_same(client, name):
    response = client.get(
        reverse(name), HTTP_HX_REQUEST="true", HTTP_HX_CURRENT_URL="http://testserver/market/dashboard/"
    )
    assert response.status_code == 200 and _next_of(response["HX-Redirect"]) == "/market/dashboard/"


@pytest.mark.parametrize(
    "current",
    ["https://evil.example/phish", "//evil.example/x", "javascript:alert(1)", "", "http://other.host/market/"],
)
def test_next_is_only_ever_a_path_on_this_site(client, offering, current):
    headers = {"HTTP_HX_REQUEST": "true"}
    if current:
        headers["HTTP_HX_CURRENT_URL"] = current
    response = client.post(reverse("marketplace:order_place", args=[offering.asset.public_id]), {}, **headers)
    assert _next_of(response["HX-Redirect"]) == "/"


def test_signed_out_plain_post_returns_to_the_referring_page_not_the_post_only_url(client):
    response = client.post(
        reverse("marketplace:withdrawal_create"),
        {"amount": "10", "currency": "EUR"},
        HTTP_REFERER="http://testserver/market/portfolio/",
    )
    assert response.status_code == 302 and _next_of(response["Location"]) == "/market/portfolio/"
    response = client.post(reverse("marketplace:withdrawal_create"), {}, HTTP_REFERER="https://evil.example/")
    assert _next_of(response["Location"]) == "/"


def test_a_plain_get_keeps_djangos_own_next(client):
    response = client.get(reverse("marketplace:portfolio"))
    assert response.status_code == 302 and _next_of(response["Location"]) == reverse("marketplace:portfolio")


def test_signed_in_htmx_requests_are_untouched(client, investor):
    client.force_login(investor)
    response = client.get(reverse("marketplace:dashboard"), HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and "HX-Redirect" not in response


def test_signing_in_from_that_redirect_returns_to_the_offering_page(client, offering, investor):
    page = _offering_page(offering)
    response = client.post(
        reverse("marketplace:order_place", args=[offering.asset.public_id]),
        {},
        HTTP_HX_REQUEST="true",
        HTTP_HX_CURRENT_URL=f"http://testserver{page}",
    )
    login_url = response["HX-Redirect"]
    assert client.get(login_url).status_code == 200
    response = client.post(login_url, {"login": investor.email, "password": DEFAULT_PASSWORD})
    assert response.status_code == 302 and response["Location"] == page
