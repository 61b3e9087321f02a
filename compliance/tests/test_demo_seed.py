import pytest
from django.core.management import call_command

from accounts.models import User
from compliance.kyc_state import KycState
from compliance.models import KycApplication
from compliance.selectors import kyc_standing_for

pytestmark = pytest.mark.django_db


def test_seed_demo_has_verified_unverified_and_flagged_investors():
    call_command("seed_demo", stdout=open("/dev/null", "w"))
    call_command("seed_demo", stdout=open("/dev/null", "w"))  # idempotent

    def standing(email):
        return kyc_standing_for(User.objects.get(email=email))

    assert standing("investor@demo.rwa").state == KycState.APPROVED
    assert standing("nora@demo.rwa").state == KycState.APPROVED
    assert standing("otto@demo.rwa").state == KycState.APPROVED
    assert standing("lena@demo.rwa").state == KycState.APPROVED  # lapses in the distributions demo
    assert standing("una@demo.rwa").state == KycState.NONE
    flagged = KycApplication.objects.get(user__email="viktor@demo.rwa")
    assert flagged.status == KycApplication.Status.SUBMITTED and flagged.is_flagged
    assert KycApplication.objects.count() == 5
