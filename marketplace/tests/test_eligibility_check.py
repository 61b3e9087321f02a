"""The eligibility engine with our books (marketplace.selectors.eligibility_check): facts
are gathered from KYC, sanctions, freezes, the asset's settings and the holdings, which
this app reads and hands to compliance.eligibility. The rules themselves are table-tested
without a DB in compliance/tests/test_eligibility_rules.py."""

import datetime

import pytest
from django.utils import timezone

from accounts.tests.factories import UserFactory
from assets.tests.factories import AssetFactory
from compliance.eligibility import TransferQuestion
from compliance.models import InvestorProfile, KycApplication
from compliance.tests.factories import KycApplicationFactory
from marketplace.models import Holding, Offering
from marketplace.selectors import eligibility_check, eligibility_check_many

pytestmark = pytest.mark.django_db


def _verified(**kwargs):
    return KycApplicationFactory(approved=True, **kwargs).user


def _hold(user, asset, quantity, days_ago=100):
    return Holding.objects.create(
        investor=user,
        asset=asset,
        quantity=quantity,
        first_acquired_at=timezone.now() - datetime.timedelta(days=days_ago),
    )


def test_verified_investor_may_buy_and_unverified_may_not():
    asset = AssetFactory()

    assert eligibility_check(investor=_verified(), asset=asset, quantity=5, direction="receive").allowed
    result = eligibility_check(investor=UserFactory(), asset=asset, quantity=5, direction="receive")
    assert result.codes == ["kyc_not_approved"]


def test_exit_only_after_expiry():
    asset = AssetFactory()
    user = _verified()
    _hold(user, asset, 10)
    KycApplication.objects.filter(user=user).update(expires_at=timezone.localdate() - datetime.timedelta(days=1))

    assert eligibility_check(investor=user, asset=asset, quantity=5, direction="receive").codes == ["kyc_expired"]
    assert eligibility_check(investor=user, asset=asset, quantity=10, direction="send").allowed


def test_asset_settings_and_holdings_are_read():
    asset = AssetFactory(
        allowed_countries=["FR"], accreditation_required=True, max_holders=1, lockup_days=30, max_holding=20
    )
    user = _verified(country_of_residence="GB")
    _hold(UserFactory(), asset, 5)  # someone else already holds

    result = eligibility_check(investor=user, asset=asset, quantity=25, direction="receive")

    assert set(result.codes) == {
        "country_not_allowed",
        "accreditation_required",
        "max_holders_reached",
        "above_max_holding",
    }


def test_lockup_counts_from_first_acquisition():
    asset = AssetFactory(lockup_days=30)
    user = _verified()
    _hold(user, asset, 10, days_ago=10)

    result = eligibility_check(investor=user, asset=asset, quantity=10, direction="send")
    assert result.codes == ["lockup"]
    later = timezone.now() + datetime.timedelta(days=21)
    assert eligibility_check(investor=user, asset=asset, quantity=10, direction="send", at=later).allowed


WINDOW_CASES = [
    # id, opens (days from now), closes (days from now), expected window status
    ("no window", None, None, Offering.Status.OPEN),
    ("before it opens", 1, None, Offering.Status.UPCOMING),
    ("as it opens", 0, None, Offering.Status.OPEN),
    ("inside the window", -1, 1, Offering.Status.OPEN),
    ("as it closes", None, 0, Offering.Status.CLOSED),
    ("after it closed", None, -1, Offering.Status.CLOSED),
]


@pytest.mark.parametrize(
    ("opens", "closes", "expected"), [c[1:] for c in WINDOW_CASES], ids=[c[0] for c in WINDOW_CASES]
)
def test_the_offering_window_is_the_offerings_own_check(opens, closes, expected):
    """Moved from the engine's rule table: the window is kept and checked on the offering
    (order_place refuses with it, the dashboard disables Buy with it)."""
    now = timezone.now()
    day = datetime.timedelta(days=1)
    offering = Offering(
        fractions_for_sale=10,
        opens_at=None if opens is None else now + opens * day,
        closes_at=None if closes is None else now + closes * day,
    )
    assert offering.window_status(now) == expected


def test_frozen_and_flagged_investors_are_blocked_both_ways():
    asset = AssetFactory()
    frozen, flagged = _verified(), _verified()
    InvestorProfile.objects.create(user=frozen, frozen=True, frozen_reason="AML")
    KycApplication.objects.filter(user=flagged).update(screening_status=KycApplication.Screening.HIT)
    for user in (frozen, flagged):
        _hold(user, asset, 10)

    assert eligibility_check(investor=frozen, asset=asset, quantity=1, direction="send").codes == ["account_frozen"]
    assert eligibility_check(investor=flagged, asset=asset, quantity=1, direction="receive").codes == ["sanctions_hit"]


def test_direction_is_validated():
    with pytest.raises(ValueError):
        eligibility_check(investor=UserFactory(), asset=AssetFactory(), quantity=1, direction="buy")


def test_many_questions_get_the_same_answers_as_one_by_one_in_constant_queries(django_assert_max_num_queries):
    user = _verified(country_of_residence="GB")
    held = AssetFactory(max_holding=12, lockup_days=30)
    _hold(user, held, 10, days_ago=5)  # locked up, and near its maximum
    crowded = AssetFactory(max_holders=1)
    _hold(UserFactory(), crowded, 3)
    closed_to_gb = AssetFactory(allowed_countries=["FR"])
    open_asset = AssetFactory()
    questions = [
        TransferQuestion(held, 10, "send"),
        TransferQuestion(held, 5, "receive"),
        TransferQuestion(crowded, 1, "receive"),
        TransferQuestion(closed_to_gb, 1, "receive"),
        TransferQuestion(open_asset, 1, "receive"),
        TransferQuestion(open_asset, 1, "send"),
    ]
    one_by_one = [
        eligibility_check(investor=user, asset=q.asset, quantity=q.quantity, direction=q.direction).codes
        for q in questions
    ]
    assert one_by_one == [
        ["lockup"],
        ["above_max_holding"],
        ["max_holders_reached"],
        ["country_not_allowed"],
        [],
        ["insufficient_holding"],
    ]
    with django_assert_max_num_queries(4):
        many = eligibility_check_many(investor=user, questions=questions)
    assert [r.codes for r in many] == one_by_one
    with pytest.raises(ValueError):
        eligibility_check_many(investor=user, questions=[TransferQuestion(open_asset, 1, "buy")])
