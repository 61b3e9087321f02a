"""What the investor dashboard shows: KYC status, the next step, holdings, and each action
with the eligibility engine's verdict (a disabled button carries the engine's reasons).

It lives with the marketplace because it joins every layer below it: compliance (KYC,
the engine), assets (live assets), the marketplace's holdings and offerings, and chain
(the custodial address)."""

from dataclasses import dataclass

from django.core.exceptions import ObjectDoesNotExist
from django.db.models import F
from django.urls import reverse
from django.utils import timezone

from assets.models import Asset
from chain.selectors import investor_account_for_user
from compliance.eligibility import RECEIVE, SEND, EligibilityResult, TransferQuestion, investor_check
from compliance.kyc_state import KycState
from compliance.models import KycApplication
from compliance.selectors import investor_profile_for, kyc_standing_for, kyc_status_for
from compliance.services import kyc_can_start_new

from .models import Holding, Offering
from .selectors import eligibility_check_many, offering_refusal

STATUS_LABELS = {
    KycState.NONE: ("Not verified", "warn"),
    KycState.PENDING: ("Not verified yet", "warn"),
    KycState.APPROVED: ("Verified", "ok"),
    KycState.EXPIRED: ("Expired (exit-only)", "warn"),
    KycState.REJECTED: ("Rejected", "err"),
}


@dataclass(frozen=True)
class Action:
    label: str
    url: str
    check: EligibilityResult


def _next_step(latest: KycApplication | None, state: str, can_start: bool) -> tuple[str, str | None, str | None]:
    """(what to do, button label, url)."""
    edit = reverse("compliance:kyc_edit")
    S = KycApplication.Status
    if latest is None:
        return (
            "Verify your identity to start investing. It takes a few minutes: your details and two documents.",
            "Start verification",
            edit,
        )
    if latest.status == S.DRAFT:
        return "Finish your application and submit it for review.", "Continue application", edit
    if latest.status == S.NEEDS_INFO:
        return f"Compliance asked for more information: {latest.decision_reason}", "Update application", edit
    if latest.status == S.SUBMITTED:
        return "Your application is being reviewed. We will email you when it is decided.", None, None
    if latest.status == S.REJECTED:
        return f"Your application was rejected: {latest.decision_reason}", "Apply again", edit
    if state == KycState.EXPIRED:
        return (
            "Your verification has expired. You can still sell what you hold; renew it to buy again.",
            "Renew verification",
            edit,
        )
    if can_start:
        return (
            f"Your verification expires on {latest.expires_at:%d %b %Y}; renew it now to keep buying.",
            "Renew verification",
            edit,
        )
    return "You are verified and can invest in offerings open to you.", None, None


def _buy_check(asset: Asset, check: EligibilityResult, at) -> EligibilityResult:
    """The engine's verdict, with the offering's state in front when it sells nothing now
    (sold out, closed, not open yet)."""
    try:
        offering = asset.offering
    except ObjectDoesNotExist:  # live, its offering not opened yet
        return check
    refusal = offering_refusal(offering=offering, status=offering.current_status(at))
    return EligibilityResult([refusal, *check.failures]) if refusal else check


def investor_dashboard(*, user) -> dict:
    now = timezone.now()
    latest = kyc_status_for(user)
    standing = kyc_standing_for(user, today=timezone.localdate(now))
    label, tone = STATUS_LABELS[standing.state]
    text, button, url = _next_step(latest, standing.state, kyc_can_start_new(user=user))
    profile = investor_profile_for(user)
    account = investor_account_for_user(user)

    held = list(Holding.objects.filter(investor=user, quantity__gt=0).select_related("asset").order_by("asset__name"))
    # Open offerings: a sold-out or closed one is not open, so it is not listed (its asset
    # page says so); a live asset whose offering is upcoming or being prepared is.
    live = list(
        Asset.objects.filter(status=Asset.Status.LIVE)
        .exclude(offering__status__in=[Offering.Status.SOLD_OUT, Offering.Status.CLOSED])
        .exclude(offering__fractions_sold__gte=F("offering__fractions_for_sale"))
        .exclude(offering__closes_at__lte=now)
        .select_related("offering")
        .order_by("name")[:20]
    )
    # One engine call for every button on the page: queries stay constant as holdings grow.
    checks = iter(
        eligibility_check_many(
            investor=user,
            at=now,
            questions=[
                *(TransferQuestion(h.asset, h.quantity, SEND) for h in held),
                *(TransferQuestion(a, a.min_purchase, RECEIVE) for a in live),
            ],
        )
    )
    holdings = [
        (h, Action("Sell", reverse("marketplace:asset_trade", args=[h.asset.public_id]), next(checks))) for h in held
    ]
    offerings = [
        (a, Action("Buy", reverse("assets:detail", args=[a.public_id]), _buy_check(a, next(checks), now))) for a in live
    ]
    return {
        "kyc": latest,
        "standing": standing,
        "status_label": label,
        "status_tone": tone,
        "next_step": text,
        "next_button": button,
        "next_url": url,
        "profile": profile,
        "custodial_address": account.address if account else "",
        "buy_check": investor_check(investor=user, direction=RECEIVE, at=now),
        "sell_check": investor_check(investor=user, direction=SEND, at=now),
        "holdings": holdings,
        "offerings": offerings,
        "poll": latest is not None and latest.status == KycApplication.Status.SUBMITTED,
    }
