import pytest

pytestmark = pytest.mark.django_db


def test_home_says_plainly_what_is_available_and_what_is_not(client):
    body = client.get("/").content.decode()
    assert "primary purchases settled on Algorand" in body
    not_yet = body[body.index("The secondary market") :]
    assert "income distributions" in not_yet[:200] and "not available yet" in not_yet[:300]
