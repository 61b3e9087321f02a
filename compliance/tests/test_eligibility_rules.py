"""The eligibility engine's rules, table-style, without a database: each case names the
facts that differ from a clean baseline and the exact set of failure codes expected."""

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest

from compliance.eligibility import RECEIVE, SEND, TransferFacts, evaluate
from compliance.kyc_state import KycState

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
BOUGHT = NOW - timedelta(days=10)

BUY = TransferFacts(direction=RECEIVE, quantity=10, at=NOW, kyc_state=KycState.APPROVED, residence_country="GB")
SELL = replace(BUY, direction=SEND, current_quantity=50, first_acquired_at=BOUGHT)

CASES = [
    # id, baseline, changes, expected failure codes
    ("clean buy", BUY, {}, set()),
    ("clean sell", SELL, {}, set()),
    # KYC
    ("buy without any KYC", BUY, {"kyc_state": KycState.NONE}, {"kyc_not_approved"}),
    ("buy while KYC pending", BUY, {"kyc_state": KycState.PENDING}, {"kyc_not_approved"}),
    ("buy after KYC rejected", BUY, {"kyc_state": KycState.REJECTED}, {"kyc_not_approved"}),
    ("buy with expired KYC", BUY, {"kyc_state": KycState.EXPIRED, "kyc_expires_at": date(2026, 6, 1)}, {"kyc_expired"}),
    ("exit-only: sell with expired KYC", SELL, {"kyc_state": KycState.EXPIRED}, set()),
    ("sell without KYC", SELL, {"kyc_state": KycState.NONE}, {"kyc_not_approved"}),
    # sanctions and freezes block both ways
    ("buy with sanctions hit", BUY, {"sanctions_clear": False}, {"sanctions_hit"}),
    ("sell with sanctions hit", SELL, {"sanctions_clear": False}, {"sanctions_hit"}),
    ("buy while frozen", BUY, {"frozen": True}, {"account_frozen"}),
    ("sell while frozen", SELL, {"frozen": True}, {"account_frozen"}),
    ("exit-only does not beat a freeze", SELL, {"kyc_state": KycState.EXPIRED, "frozen": True}, {"account_frozen"}),
    # country
    ("buy from allowed country", BUY, {"allowed_countries": ("GB", "FR")}, set()),
    ("buy from allowed country, lower-case codes", BUY, {"allowed_countries": ("gb",)}, set()),
    ("buy from other country", BUY, {"allowed_countries": ("FR", "DE")}, {"country_not_allowed"}),
    (
        "buy with unknown residence",
        BUY,
        {"allowed_countries": ("FR",), "residence_country": ""},
        {"country_not_allowed"},
    ),
    ("sell from other country is an exit", SELL, {"allowed_countries": ("FR",)}, set()),
    # accreditation
    ("retail buys accredited-only offering", BUY, {"accreditation_required": True}, {"accreditation_required"}),
    (
        "accredited buys accredited-only offering",
        BUY,
        {"accreditation_required": True, "qualified_investor": True},
        set(),
    ),
    ("retail sells accredited-only asset", SELL, {"accreditation_required": True}, set()),
    # holding limits
    ("buy reaching min holding", BUY, {"min_holding": 10}, set()),
    ("buy below min holding", BUY, {"min_holding": 25}, {"below_min_holding"}),
    ("top-up counts existing units", BUY, {"min_holding": 25, "current_quantity": 20}, set()),
    ("buy exactly to max holding", BUY, {"max_holding": 30, "current_quantity": 20}, set()),
    ("buy above max holding", BUY, {"max_holding": 25, "current_quantity": 20}, {"above_max_holding"}),
    ("sell everything under min holding rule", SELL, {"min_holding": 20, "quantity": 50}, set()),
    ("sell leaving less than min holding", SELL, {"min_holding": 20, "quantity": 40}, {"below_min_holding"}),
    ("sell more than held", SELL, {"quantity": 51}, {"insufficient_holding"}),
    # holder count
    ("new holder when room left", BUY, {"max_holders": 3, "holder_count": 2}, set()),
    ("new holder when full", BUY, {"max_holders": 3, "holder_count": 3}, {"max_holders_reached"}),
    ("existing holder tops up when full", BUY, {"max_holders": 3, "holder_count": 3, "current_quantity": 5}, set()),
    # lock-up
    ("sell inside lock-up", SELL, {"lockup_days": 30}, {"lockup"}),
    ("sell on the day lock-up ends", SELL, {"lockup_days": 10}, set()),
    ("sell after lock-up", SELL, {"lockup_days": 5}, set()),
    (
        "buy during own lock-up is fine",
        replace(BUY, current_quantity=5, first_acquired_at=BOUGHT),
        {"lockup_days": 30},
        set(),
    ),
    ("exit-only still respects lock-up", SELL, {"kyc_state": KycState.EXPIRED, "lockup_days": 30}, {"lockup"}),
    # quantity
    ("zero quantity", BUY, {"quantity": 0}, {"quantity_invalid"}),
    # combinations: every failure is reported, not only the first
    (
        "expired KYC, frozen, wrong country, retail, over max, full",
        BUY,
        {
            "kyc_state": KycState.EXPIRED,
            "frozen": True,
            "allowed_countries": ("FR",),
            "accreditation_required": True,
            "max_holding": 5,
            "max_holders": 1,
            "holder_count": 1,
        },
        {
            "kyc_expired",
            "account_frozen",
            "country_not_allowed",
            "accreditation_required",
            "above_max_holding",
            "max_holders_reached",
        },
    ),
    (
        "no KYC and sanctions hit",
        BUY,
        {"kyc_state": KycState.NONE, "sanctions_clear": False},
        {"kyc_not_approved", "sanctions_hit"},
    ),
    (
        "sell in lock-up leaving below minimum",
        SELL,
        {"lockup_days": 30, "min_holding": 45, "quantity": 10},
        {"lockup", "below_min_holding"},
    ),
]


@pytest.mark.parametrize(("baseline", "changes", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_rule_table(baseline, changes, expected):
    result = evaluate(replace(baseline, **changes))

    assert set(result.codes) == expected
    assert result.allowed is (not expected)
    assert all(f.message for f in result.failures)


def test_messages_explain_themselves():
    facts = replace(
        BUY,
        kyc_state=KycState.EXPIRED,
        kyc_expires_at=date(2026, 6, 1),
        max_holding=25,
        current_quantity=20,
        allowed_countries=("FR",),
    )

    messages = {f.code: f.message for f in evaluate(facts).failures}

    assert "expired on 1 Jun 2026" in messages["kyc_expired"] and "sell" in messages["kyc_expired"]
    assert "at most 5 more" in messages["above_max_holding"]
    assert "United Kingdom" in messages["country_not_allowed"]


def test_lockup_message_names_the_end_date():
    result = evaluate(replace(SELL, lockup_days=30))

    assert result.failures[0].message.startswith("Your units are locked up until 5 Jul 2026")
