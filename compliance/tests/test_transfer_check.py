"""transfer_check against the database: the person's facts are read from KYC, sanctions
and freezes, the asset's from its settings; the holdings are the caller's (the
marketplace's books, tested with them in marketplace/tests/test_eligibility_check.py).
The rules themselves are table-tested without a DB."""

import datetime
from types import SimpleNamespace

import pytest
from django.utils import timezone

from accounts.tests.factories import UserFactory
from assets.tests.factories import AssetFactory
from compliance.eligibility import TransferQuestion, investor_check, transfer_check, transfer_check_many
from compliance.models import KycApplication
from compliance.selectors import kyc_standing_for, kyc_status_for

from .factories import KycApplicationFactory

pytestmark = pytest.mark.django_db

NO_HOLDING = {"holding": None, "holder_count": 0}


def _verified(**kwargs):
    return KycApplicationFactory(approved=True, **kwargs).user


def test_verified_investor_may_buy_and_unverified_may_not():
    asset = AssetFactory()

    assert transfer_check(investor=_verified(), asset=asset, quantity=5, direction="receive", **NO_HOLDING).allowed
    result = transfer_check(investor=UserFactory(), asset=asset, quantity=5, direction="receive", **NO_HOLDING)
    assert result.codes == ["kyc_not_approved"]


def test_renewal_in_progress_keeps_the_current_approval():
    user = _verified()
    KycApplicationFactory(user=user)  # a new draft

    assert kyc_standing_for(user).state == "approved"
    assert kyc_status_for(user).status == KycApplication.Status.DRAFT
    assert investor_check(investor=user, direction="receive").allowed


def test_the_holding_and_holder_count_are_the_callers(django_assert_num_queries):
    """The engine reads the person (one query: the KYC applications with the profile's
    freeze) and judges the holding it is handed."""
    asset = AssetFactory(max_holders=1, lockup_days=30, max_holding=20)
    user = _verified()
    held = SimpleNamespace(
        quantity=10, pending_quantity=5, first_acquired_at=timezone.now() - datetime.timedelta(days=10)
    )

    with django_assert_num_queries(1):
        buy = transfer_check(investor=user, asset=asset, quantity=6, direction="receive", holding=held, holder_count=1)
    sell = transfer_check(investor=user, asset=asset, quantity=10, direction="send", holding=held, holder_count=1)
    newcomer = transfer_check(investor=user, asset=asset, quantity=1, direction="receive", holding=None, holder_count=1)

    assert buy.codes == ["above_max_holding"]  # 10 settled + 5 reserved + 6 > 20
    assert sell.codes == ["lockup"]
    assert newcomer.codes == ["max_holders_reached"]
    [many] = transfer_check_many(investor=user, questions=[TransferQuestion(asset, 6, "receive", held, 1)])
    assert many.codes == buy.codes


def test_direction_is_validated():
    with pytest.raises(ValueError):
        transfer_check(investor=UserFactory(), asset=AssetFactory(), quantity=1, direction="buy", **NO_HOLDING)
    with pytest.raises(ValueError):
        transfer_check_many(investor=UserFactory(), questions=[TransferQuestion(AssetFactory(), 1, "buy")])
