import pytest

pytestmark = pytest.mark.django_db


def test_home_says_plainly_what_is_available_and_what_is_not(client):
    body = client.get("/").content.decode()
    assert "primary purchases settled on Algorand" in body
    market = body[body.index("The secondary market") :]
    market = market[: market.index("</p>")]
    assert "trade fractions with each other" in market and "settles delivery versus payment" in market
    assert "not available" not in market
    not_yet = body[body.index("Income distributions") :]
    assert "not available yet" in not_yet[:100]
