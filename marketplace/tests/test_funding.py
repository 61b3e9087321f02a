"""Payment references (ISO 11649), deposit instructions and the investor's "Add funds"
page (docs/funding.md)."""

import re

import pytest
from django.test import override_settings
from django.urls import reverse

from accounts.tests.factories import UserFactory
from marketplace import funding
from marketplace.funding import (
    RF_BODY_ALPHABET,
    RF_LENGTH,
    payment_reference_for,
    references_in,
    rf_check_digits,
    rf_compact,
    rf_format,
    rf_generate,
    rf_typo_neighbours,
    rf_valid,
)
from marketplace.models import PaymentReference

from .factories import verified_investor

# -- the checksum ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "RF18539007547034",  # ISO 11649's own example
        "RF18 5390 0754 7034",
        "rf18 5390 0754 7034",
        " RF18000000000539007547034 ",
        "RF712348231",
    ],
)
def test_valid_references(text):
    assert rf_valid(text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "RF",
        "RF18",
        "RF19539007547034",  # wrong check digits
        "RF18539007547035",  # last character changed
        "RF18539007547043",  # last two swapped
        "RF1853900754703",  # one character missing
        "XX18539007547034",  # not RF
        "RF1A539007547034",  # check digits must be digits
        "RF18-5390-0754-7034",  # hyphens are not part of it
        "RF18539007547034RF18539007547034",  # longer than 25
        "RF18539007547034é",
    ],
)
def test_invalid_references(text):
    assert not rf_valid(text)


def test_check_digits_follow_the_standard():
    # ISO 11649 annex: body 539007547034 -> check digits 18
    assert rf_check_digits("539007547034") == "18"
    assert rf_check_digits("2348231") == "71"


def test_generated_references_have_the_shape_and_a_valid_checksum():
    refs = {rf_generate() for _ in range(200)}
    assert len(refs) == 200
    for ref in refs:
        assert re.fullmatch(r"RF[0-9]{2}[" + RF_BODY_ALPHABET + "]{12}", ref) and len(ref) == RF_LENGTH
        assert rf_valid(ref) and rf_valid(rf_format(ref).lower())
        for ambiguous in "01OIL":
            assert ambiguous not in ref[4:]


def test_no_single_substitution_or_adjacent_transposition_of_a_reference_is_valid():
    """A typo of one investor's reference never passes the checksum, so it can never be
    somebody else's reference."""
    for _ in range(100):
        ref = rf_generate()
        checked = 0
        for i in range(len(ref)):
            for ch in "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ":
                if ch != ref[i]:
                    typo = ref[:i] + ch + ref[i + 1 :]
                    assert not rf_valid(typo), (ref, typo)
                    checked += 1
        for i in range(len(ref) - 1):
            if ref[i] != ref[i + 1]:
                typo = ref[:i] + ref[i + 1] + ref[i] + ref[i + 2 :]
                assert not rf_valid(typo), (ref, typo)
                checked += 1
        assert checked >= 16 * 35


def test_mod97_alone_would_let_some_typos_through_which_generation_avoids():
    """Why rf_generate checks the neighbours: the standard's example has a one-typo
    neighbour (a letter for a digit) that passes the checksum."""
    assert any(rf_valid(n) for n in rf_typo_neighbours("RF18539007547034"))


def test_compact_and_printed_forms():
    assert rf_compact(" rf18 5390\t0754 7034\n") == "RF18539007547034"
    assert rf_format("rf18539007547034") == "RF18 5390 0754 7034"


# -- finding references in remittance text ------------------------------------------------------


def test_references_are_found_in_any_case_and_spacing():
    ref = rf_generate()
    printed = rf_format(ref)
    assert references_in(f"Deposit {printed.lower()} thank you") == [ref]
    assert references_in(f"{ref}") == [ref]
    assert references_in(f"ref:{ref}") == [ref]
    assert references_in(f"{printed} {printed.replace(' ', '')}") == [ref]
    assert references_in("no reference at all") == []
    assert references_in("SURF1853900754703400") == []


def test_two_references_side_by_side_are_both_found():
    a, b = rf_generate(), rf_generate()
    assert references_in(f"{rf_format(a)} and {rf_format(b)}") == [a, b]
    assert references_in(f"{a}{' '}{b}") == [a, b]


def test_a_mistyped_reference_is_found_as_written_and_fails_the_checksum():
    ref = rf_generate()
    typo = ref[:8] + ("X" if ref[8] != "X" else "Y") + ref[9:]
    found = references_in(f"payment {rf_format(typo)}. Thanks")
    assert found == [typo] and not rf_valid(found[0])
    # Run on into the next word, the typo is still reported as written (its first 16
    # characters), unless the run-on happens to be valid as a whole (1 in 97).
    run_on = typo + "THANKS"
    assert references_in(f"{rf_format(typo)} thanks") == [run_on if rf_valid(run_on) else typo]


# -- the investor's reference ---------------------------------------------------------------


@pytest.mark.django_db
def test_payment_reference_is_created_once_and_unique_per_investor():
    alice, bob = UserFactory(), UserFactory()
    first = payment_reference_for(alice)
    assert payment_reference_for(alice) == first and PaymentReference.objects.filter(investor=alice).count() == 1
    assert rf_valid(first.reference)
    assert payment_reference_for(bob).reference != first.reference


@pytest.mark.django_db
def test_a_drawn_reference_that_exists_already_is_drawn_again(monkeypatch):
    alice, bob = UserFactory(), UserFactory()
    taken = payment_reference_for(alice).reference
    draws = iter([taken, "RF11K5MBKVQ75MMP"])
    monkeypatch.setattr(funding, "rf_generate", lambda: next(draws))
    assert payment_reference_for(bob).reference == "RF11K5MBKVQ75MMP"


# -- deposit instructions ---------------------------------------------------------------------


def test_platform_bank_accounts_come_from_settings_for_settled_currencies_only():
    accounts = {
        "eur": {"holder": "Platform", "iban": "NL91 ABNA 0417 1643 00", "bic": "ABNANL2A", "bank": "ABN"},
        "XYZ": {"holder": "Nope", "iban": "GB29NWBK60161331926819"},
        "USD": {"holder": "Platform", "iban": "GB29NWBK60161331926819", "demo": True},
    }
    with override_settings(PLATFORM_BANK_ACCOUNTS=accounts):
        found = funding.platform_bank_accounts()
    assert [a.currency for a in found] == ["USD", "EUR"]  # order of config.money.CURRENCIES
    eur = found[1]
    assert eur.iban == "NL91ABNA0417164300" and eur.iban_printed == "NL91 ABNA 0417 1643 00" and not eur.demo
    assert found[0].demo


def test_the_default_accounts_are_marked_as_demo_accounts():
    found = funding.platform_bank_accounts()
    assert {"EUR", "USD"} <= {a.currency for a in found}
    assert all(a.demo for a in found)


# -- the "Add funds" page -------------------------------------------------------------------


@pytest.mark.django_db
def test_add_funds_needs_a_login(client):
    response = client.get(reverse("marketplace:add_funds"))
    assert response.status_code == 302 and "login" in response["Location"]
    assert not PaymentReference.objects.exists()


@pytest.mark.django_db
def test_add_funds_shows_the_bank_details_and_only_the_investors_own_reference(client):
    alice, bob = verified_investor(), verified_investor()
    bob_ref = payment_reference_for(bob).reference
    client.force_login(alice)
    response = client.get(reverse("marketplace:add_funds"))
    assert response.status_code == 200
    html = response.content.decode()
    alice_ref = PaymentReference.objects.get(investor=alice).reference
    assert rf_format(alice_ref) in html and f'data-copy="{alice_ref}"' in html
    assert bob_ref not in html and rf_format(bob_ref) not in html
    assert "NL91 ABNA 0417 1643 00" in html and 'data-copy="NL91ABNA0417164300"' in html
    assert 'data-currency="EUR"' in html and 'data-currency="USD"' in html
    assert 'id="demo-accounts"' in html  # the defaults are demo accounts
    # Copy buttons come from a static script; CSP forbids inline scripts.
    assert "js/copy.js" in html
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html)
    assert " onclick=" not in html
    # A second visit shows the same reference.
    assert rf_format(alice_ref) in client.get(reverse("marketplace:add_funds")).content.decode()


@pytest.mark.django_db
def test_add_funds_with_real_accounts_has_no_demo_warning(client):
    accounts = {"EUR": {"holder": "RWA Marketplace B.V.", "iban": "NL91ABNA0417164300", "bic": "ABNANL2A"}}
    client.force_login(verified_investor())
    with override_settings(PLATFORM_BANK_ACCOUNTS=accounts):
        html = client.get(reverse("marketplace:add_funds")).content.decode()
    assert 'id="demo-accounts"' not in html and 'data-currency="USD"' not in html


@pytest.mark.django_db
def test_add_funds_is_get_only(client):
    client.force_login(verified_investor())
    assert client.post(reverse("marketplace:add_funds")).status_code == 405


@pytest.mark.django_db
def test_portfolio_shows_the_reference_and_links_to_add_funds(client):
    investor = verified_investor()
    client.force_login(investor)
    html = client.get(reverse("marketplace:portfolio")).content.decode()
    ref = PaymentReference.objects.get(investor=investor).reference
    assert rf_format(ref) in html
    assert reverse("marketplace:add_funds") in html
    assert "account email as the reference" not in html


@pytest.mark.django_db
def test_dashboard_links_to_add_funds(client):
    client.force_login(verified_investor())
    html = client.get(reverse("marketplace:dashboard")).content.decode()
    assert 'id="add-funds"' in html and reverse("marketplace:add_funds") in html
