"""Row locks of the compliance app, taken in this order when several are needed:
KycApplication, then InvestorProfile; the audit chain head is always last."""

from .models import InvestorProfile, KycApplication


def kyc_application_lock(*, pk: int) -> KycApplication:
    return KycApplication.objects.select_for_update().get(pk=pk)


def investor_profile_lock(*, user) -> InvestorProfile:
    return InvestorProfile.objects.select_for_update().get(user=user)
