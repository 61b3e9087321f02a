import pytest

pytestmark = [pytest.mark.django_db, pytest.mark.urls("config.tests.urls")]


def _assert_styled(response, code, heading):
    html = response.content.decode()
    assert response.status_code == code
    assert f'<p class="code">{code}</p>' in html
    assert f"<h1>{heading}</h1>" in html
    assert "/static/css/app.css" in html
    assert "Traceback" not in html


def test_404_page_is_styled(client, settings):
    settings.DEBUG = False

    _assert_styled(client.get("/no-such-page/"), 404, "Page not found")


def test_403_page_is_styled(client, settings):
    settings.DEBUG = False

    _assert_styled(client.get("/_test/forbidden"), 403, "Not allowed")


def test_500_page_is_styled_and_leaks_nothing(client, settings):
    settings.DEBUG = False
    client.raise_request_exception = False

    response = client.get("/_test/broken")

    _assert_styled(response, 500, "Something went wrong")
    assert "boom" not in response.content.decode()


def test_error_pages_keep_the_navigation_for_signed_in_users(client, settings):
    from accounts.tests.factories import UserFactory

    settings.DEBUG = False
    client.force_login(UserFactory(email="ivan@example.com"))

    html = client.get("/no-such-page/").content.decode()

    assert "ivan@example.com" in html
    assert "Sign out" in html
