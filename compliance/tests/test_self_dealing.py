"""Nobody frees or freezes their own account: staff are investors too."""

import pytest
from django.core.exceptions import PermissionDenied

from compliance.models import InvestorProfile
from compliance.services import investor_freeze, investor_unfreeze

from .factories import OfficerFactory

pytestmark = pytest.mark.django_db


def test_an_officer_cannot_unfreeze_or_freeze_their_own_account():
    officer, colleague = OfficerFactory(), OfficerFactory()
    investor_freeze(user=officer, actor=colleague, reason="Court order")

    with pytest.raises(PermissionDenied, match="own account"):
        investor_unfreeze(user=officer, actor=officer, reason="mine")
    with pytest.raises(PermissionDenied, match="own account"):
        investor_freeze(user=officer, actor=officer, reason="mine")

    assert InvestorProfile.objects.get(user=officer).frozen
    investor_unfreeze(user=officer, actor=colleague, reason="Lifted")
    assert not InvestorProfile.objects.get(user=officer).frozen
