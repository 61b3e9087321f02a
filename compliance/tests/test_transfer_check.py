"""transfer_check against the database: facts are gathered from KYC, sanctions, freezes,
the asset's settings and holdings. The rules themselves are table-tested without a DB."""

import datetime

import pytest
from django.utils import timezone

from accounts.tests.factories import UserFactory
from assets.tests.factories import AssetFactory
from compliance.eligibility import TransferQuestion, investor_check, transfer_check, transfer_check_many
from compliance.models import InvestorProfile, KycApplication
from compliance.selectors import kyc_standing_for, kyc_status_for
from marketplace.models import Holding

from .factories import KycApplicationFactory

pytestmark = pytest.mark.django_db


def _verified(**kwargs):
    return KycApplicationFactory(approved=True, **kwargs).user


def _hold(user, asset, quantity, days_ago=100):
    return Holding.objects.create(investor=user, asset=asset, quantity=quantity, first_acquired_at=timezone.now() - datetime.timedelta(days=days_ago))


def test_verified_investor_may_buy_and_unverified_may_not():
    asset = AssetFactory()

    assert transfer_check(investor=_verified(), asset=asset, quantity=5, direction="receive").allowed
    result = transfer_check(investor=UserFactory(), asset=asset, quantity=5, direction="receive")
    assert result.codes == ["kyc_not_approved"]


def test_exit_only_after_expiry():
    asset = AssetFactory()
    user = _verified()
    _hold(user, asset, 10)
    KycApplication.objects.filter(user=user).update(expires_at=timezone.localdate() - datetime.timedelta(days=1))

    assert transfer_check(investor=user, asset=asset, quantity=5, direction="receive").codes == ["kyc_expired"]
    assert transfer_check(investor=user, asset=asset, quantity=10, direction="send").allowed


def test_renewal_in_progress_keeps_the_current_approval():
    user = _verified()
    KycApplicationFactory(user=user)  # a new draft

    assert kyc_standing_for(user).state == "approved"
    assert kyc_status_for(user).status == KycApplication.Status.DRAFT
    assert investor_check(investor=user, direction="receive").allowed


def test_asset_settings_and_holdings_are_read():
    asset = AssetFactory(allowed_countries=["FR"], accreditation_required=True, max_holders=1, lockup_days=30, max_holding=20)
    user = _verified(country_of_residence="GB")
    _hold(UserFactory(), asset, 5)  # someone else already holds

    result = transfer_check(investor=user, asset=asset, quantity=25, direction="receive")

    assert set(result.codes) == {"country_not_allowed", "accreditation_required", "max_holders_reached", "above_max_holding"}


def test_lockup_counts_from_first_acquisition():
    asset = AssetFactory(lockup_days=30)
    user = _verified()
    _hold(user, asset, 10, days_ago=10)

    result = transfer_check(investor=user, asset=asset, quantity=10, direction="send")
    assert result.codes == ["lockup"]
    later = timezone.now() + datetime.timedelta(days=21)
    assert transfer_check(investor=user, asset=asset, quantity=10, direction="send", at=later).allowed


def test_offering_window_applies_to_primary_purchases_only():
    asset = AssetFactory(offering_closes_at=timezone.now() - datetime.timedelta(days=1))
    user = _verified()

    assert transfer_check(investor=user, asset=asset, quantity=1, direction="receive").codes == ["offering_closed"]
    assert transfer_check(investor=user, asset=asset, quantity=1, direction="receive", primary=False).allowed


def test_frozen_and_flagged_investors_are_blocked_both_ways():
    asset = AssetFactory()
    frozen, flagged = _verified(), _verified()
    InvestorProfile.objects.create(user=frozen, frozen=True, frozen_reason="AML")
    KycApplication.objects.filter(user=flagged).update(screening_status=KycApplication.Screening.HIT)
    for user in (frozen, flagged):
        _hold(user, asset, 10)

    assert transfer_check(investor=frozen, asset=asset, quantity=1, direction="send").codes == ["account_frozen"]
    assert transfer_check(investor=flagged, asset=asset, quantity=1, direction="receive").codes == ["sanctions_hit"]


def test_direction_is_validated():
    with pytest.raises(ValueError):
        transfer_check(investor=UserFactory(), asset=AssetFactory(), quantity=1, direction="buy")


def test_many_questions_get_the_same_answers_as_one_by_one_in_constant_queries(django_assert_max_num_queries):
    user = _verified(country_of_residence="GB")
    held = AssetFactory(max_holding=12, lockup_days=30)
    _hold(user, held, 10, days_ago=5)  # locked up, and near its maximum
    crowded = AssetFactory(max_holders=1)
    _hold(UserFactory(), crowded, 3)
    closed_to_gb = AssetFactory(allowed_countries=["FR"])
    open_asset = AssetFactory()
    questions = [
        TransferQuestion(held, 10, "send", primary=False), TransferQuestion(held, 5, "receive"),
        TransferQuestion(crowded, 1, "receive"), TransferQuestion(closed_to_gb, 1, "receive"),
        TransferQuestion(open_asset, 1, "receive"), TransferQuestion(open_asset, 1, "send"),
    ]
    one_by_one = [transfer_check(investor=user, asset=q.asset, quantity=q.quantity, direction=q.direction,
                                 primary=q.primary).codes for q in questions]
    assert one_by_one == [["lockup"], ["above_max_holding"], ["max_holders_reached"], ["country_not_allowed"], [],
                          ["insufficient_holding"]]
    with django_assert_max_num_queries(4):
        many = transfer_check_many(investor=user, questions=questions)
    assert [r.codes for r in many] == one_by_one
    with pytest.raises(ValueError):
        transfer_check_many(investor=user, questions=[TransferQuestion(open_asset, 1, "buy")])
