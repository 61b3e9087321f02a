import pytest
from django.core.exceptions import ValidationError

from config.money import CURRENCIES, currency_clean, format_money, minor_to_major_text, parse_major_to_minor


@pytest.mark.parametrize(
    "raw, minor",
    [
        ("1250.50", 125_050),
        ("1,250.5", 125_050),
        (" 0.01 ", 1),
        ("100", 10_000),
        ("92233720368547758.07", 2**63 - 1),
    ],
)
def test_major_units_parse_to_exact_minor_units(raw, minor):
    assert parse_major_to_minor(raw, field="amount") == minor


@pytest.mark.parametrize(
    "raw, message",
    [
        ("abc", "as a number"),
        ("NaN", "as a number"),
        ("Infinity", "as a number"),
        ("-Infinity", "as a number"),
        ("1.005", "at most two decimal places"),
        ("0", "greater than zero"),
        ("-5", "greater than zero"),
        ("92233720368547758.08", "too large"),
        ("", "as a number"),
    ],
)
def test_bad_amounts_are_refused_with_a_clear_message(raw, message):
    with pytest.raises(ValidationError, match=message):
        parse_major_to_minor(raw, field="amount")


def test_display_is_exact_and_round_trips():
    assert format_money(125_050, "EUR") == "1,250.50 EUR"
    assert format_money(-5, "USD") == "-0.05 USD"
    assert format_money(None, "USD") == "—"
    for minor in (1, 99, 100, 123_456_789, 2**63 - 1):
        assert parse_major_to_minor(minor_to_major_text(minor), field="x") == minor


def test_only_supported_currencies_are_taken():
    assert currency_clean(" eur ") == "EUR"
    assert set(CURRENCIES) >= {"USD", "EUR", "GBP", "CHF"}
    for code in ("JPY", "XYZ", "EURO", "", None):
        with pytest.raises(ValidationError, match="We settle in USD, EUR"):
            currency_clean(code)
