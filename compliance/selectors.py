from dataclasses import dataclass
from datetime import date

from django.db.models import QuerySet
from django.http import Http404
from django.utils import timezone

from .kyc_state import KycState
from .models import AuditEntry, InvestorProfile, KycApplication, KycDocument


def kyc_applications_for(user) -> QuerySet[KycApplication]:
    return KycApplication.objects.filter(user=user).order_by("-created_at", "-pk")


def kyc_status_for(user) -> KycApplication | None:
    """The investor's current (most recent) KYC application, or None."""
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    return kyc_applications_for(user).prefetch_related("documents").first()


@dataclass(frozen=True)
class KycStanding:
    state: str  # KycState
    application: KycApplication | None  # the one whose details count (the approved one if any)
    latest: KycApplication | None
    expires_at: date | None
    sanctions_clear: bool


def kyc_standing_for(user, *, today: date | None = None) -> KycStanding:
    """Where the investor stands for trading. An approval stays valid until it expires
    even while a renewal application is being prepared or reviewed."""
    return _standing_from(_standing_rows(user), today or timezone.localdate())


# The investor's newest applications (what `_standing_from` needs of each) with the
# profile's freeze flag on every row: the eligibility engine asks for both on every order
# and trade order, so they are one statement, written out (the ORM's two reads cost five
# times its Python: bench/purchase).
_STANDING_SQL = (
    "SELECT id, user_id, status, screening_status, expires_at, country_of_residence, investor_category, "
    "(SELECT frozen FROM compliance_investorprofile WHERE user_id = %s) AS profile_frozen "
    "FROM compliance_kycapplication WHERE user_id = %s ORDER BY created_at DESC, id DESC LIMIT 20"
)


def _standing_rows(user) -> list[KycApplication]:
    """The applications a standing is worked out from, newest first; each carries only
    the columns above (the rest load on access) and `profile_frozen`."""
    if not getattr(user, "is_authenticated", False):
        return []
    return list(KycApplication.objects.raw(_STANDING_SQL, [user.pk, user.pk]))


def investor_standing_for(user, *, today: date | None = None) -> tuple[KycStanding, bool]:
    """`kyc_standing_for` and whether the investor's account is frozen, in one statement.
    Only an investor who never applied costs a second read, the profile's."""
    apps = _standing_rows(user)
    standing = _standing_from(apps, today or timezone.localdate())
    if apps:
        return standing, bool(apps[0].profile_frozen)  # type: ignore[attr-defined]  # the statement's own column
    profile = investor_profile_for(user)
    return standing, bool(profile and profile.frozen)


def kyc_standings_for_many(user_ids, *, today: date | None = None) -> dict[int, KycStanding]:
    """`kyc_standing_for` for many investors in one query (distribution runs)."""
    today = today or timezone.localdate()
    per_user: dict[int, list[KycApplication]] = {uid: [] for uid in user_ids}
    for app in KycApplication.objects.filter(user_id__in=list(per_user)).order_by("user_id", "-created_at", "-pk"):
        per_user[app.user_id].append(app)
    return {uid: _standing_from(apps, today) for uid, apps in per_user.items()}


def frozen_user_ids(user_ids) -> set[int]:
    return set(
        InvestorProfile.objects.filter(user_id__in=list(user_ids), frozen=True).values_list("user_id", flat=True)
    )


def _standing_from(apps: list[KycApplication], today: date) -> KycStanding:
    """`apps`: the investor's applications, newest first."""
    latest = apps[0] if apps else None
    approved = next((a for a in apps if a.status == KycApplication.Status.APPROVED), None)
    flagged = any(a.screening_status == KycApplication.Screening.HIT for a in (approved, latest) if a is not None)
    if approved is not None:
        state = KycState.EXPIRED if approved.is_expired(today) else KycState.APPROVED
        return KycStanding(state, approved, latest, approved.expires_at, not flagged)
    if latest is None:
        state = KycState.NONE
    elif latest.status == KycApplication.Status.REJECTED:
        state = KycState.REJECTED
    else:
        state = KycState.PENDING
    return KycStanding(state, latest, latest, None, not flagged)


def investor_profile_for(user) -> InvestorProfile | None:
    if not getattr(user, "is_authenticated", False):
        return None
    return InvestorProfile.objects.filter(user=user).first()


def kyc_application_get_for_user(*, public_id, user) -> KycApplication:
    """The applicant's own application; anybody else's is a 404, never a 403."""
    app = KycApplication.objects.filter(public_id=public_id, user=user).first()
    if app is None:
        raise Http404("No such KYC application.")
    return app


def kyc_document_get_for_user(*, public_id, user) -> KycDocument:
    doc = KycDocument.objects.select_related("application").filter(public_id=public_id, application__user=user).first()
    if doc is None:
        raise Http404("No such document.")
    return doc


def kyc_review_queue() -> QuerySet[KycApplication]:
    """Applications waiting for staff, oldest first, flagged ones included."""
    return (
        KycApplication.objects.filter(status=KycApplication.Status.SUBMITTED)
        .select_related("user", "first_approval_by")
        .order_by("submitted_at", "pk")
    )


def audit_entries_for(target) -> QuerySet[AuditEntry]:
    return AuditEntry.objects.filter(target_type=target._meta.label, target_id=str(target.pk)).order_by("seq")
