"""Writes of the compliance app: KYC applications and their review, sanctions lists and
screening, account freezes. Every decision is recorded in the audit log in the same
transaction.

Lock order (compliance): KycApplication row, then InvestorProfile row, then the audit
chain head (always last, inside audit_record)."""

from datetime import timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.urls import reverse
from django.utils import timezone

from accounts.notifications import notify
from chain.services import investor_account_get_or_create
from config.uploads import validate_upload

from .audit import audit_record, model_snapshot
from .locks import investor_profile_lock, kyc_application_lock
from .models import InvestorProfile, KycApplication, KycDocument, SanctionsEntry
from .screening import ParsedEntry, name_normalize, screen_name
from .selectors import kyc_status_for

RENEWAL_WINDOW_DAYS = 60
REVIEW_PERMISSION = "compliance.review_kycapplication"
FREEZE_PERMISSION = "compliance.freeze_investorprofile"
DECISION_FIELDS = ("status", "screening_status", "first_approval_by", "decided_by", "decision_reason", "expires_at")
REQUIRED_DOCUMENTS = (KycDocument.Kind.IDENTITY, KycDocument.Kind.PROOF_OF_ADDRESS)


def kyc_validity_days() -> int:
    return settings.KYC_VALIDITY_DAYS


# Applicant side -----------------------------------------------------------------------


def kyc_can_start_new(*, user, today=None) -> bool:
    """A new application is allowed when none is open and any approval is expired or
    close to expiry (renewal), or the last one was rejected."""
    today = today or timezone.localdate()
    latest = kyc_status_for(user)
    if latest is None or latest.status == KycApplication.Status.REJECTED:
        return True
    if latest.status == KycApplication.Status.APPROVED:
        assert latest.expires_at is not None, "an approval always sets expires_at"
        return latest.expires_at - timedelta(days=RENEWAL_WINDOW_DAYS) <= today
    return False


@transaction.atomic(durable=True)
def kyc_application_start(*, user) -> KycApplication:
    """The application the investor should edit now: the open one, or a new draft
    (prefilled from the previous application for a renewal)."""
    return _kyc_start_in_transaction(user=user)


def _kyc_start_in_transaction(*, user) -> KycApplication:
    latest = kyc_status_for(user)
    if latest is not None and latest.status in KycApplication.OPEN_STATUSES:
        return latest
    if not kyc_can_start_new(user=user):
        raise ValidationError("Your KYC is approved and not due for renewal yet.", code="not_due")
    app = KycApplication(user=user)
    if latest is not None:
        for name in KycApplication.RENEWAL_COPIED_FIELDS:
            setattr(app, name, getattr(latest, name))
    app.save()
    audit_record(actor=user, action="kyc.started", target=app)
    return app


def _document_store(*, application: KycApplication, kind: str, uploaded, info) -> KycDocument:
    old = KycDocument.objects.filter(application=application, kind=kind).first()
    if old is not None:
        storage, name = old.file.storage, old.file.name
        assert name, "a stored document always has a file"
        old.delete()
        transaction.on_commit(lambda: storage.delete(name))
    doc = KycDocument(
        application=application,
        kind=kind,
        original_name=info.safe_name,
        content_type=info.content_type,
        size=info.size,
        sha256=info.sha256,
    )
    doc.file.save(info.safe_name, uploaded, save=False)
    doc.full_clean()
    doc.save()
    return doc


@transaction.atomic(durable=True)
def kyc_application_save(
    *, application: KycApplication, user, data: dict, identity_document=None, proof_of_address=None
) -> KycApplication:
    """Save the applicant's details and any new documents. Files are validated by content
    first; if one is refused, nothing is saved."""
    return _kyc_save_in_transaction(
        application=application,
        user=user,
        data=data,
        identity_document=identity_document,
        proof_of_address=proof_of_address,
    )


def _kyc_save_in_transaction(
    *, application: KycApplication, user, data: dict, identity_document=None, proof_of_address=None
) -> KycApplication:
    app = kyc_application_lock(pk=application.pk)
    if app.user_id != user.pk:
        raise PermissionDenied
    if not app.is_editable:
        raise ValidationError("This application can no longer be changed.", code="not_editable")
    uploads, errors = [], {}
    for field, kind, uploaded in (
        ("identity_document", KycDocument.Kind.IDENTITY, identity_document),
        ("proof_of_address", KycDocument.Kind.PROOF_OF_ADDRESS, proof_of_address),
    ):
        if uploaded is None:
            continue
        try:
            uploads.append((kind, uploaded, validate_upload(uploaded)))
        except ValidationError as exc:
            errors[field] = exc.messages
    if errors:
        raise ValidationError(errors)
    for name in KycApplication.APPLICANT_FIELDS:
        if name in data:
            setattr(app, name, data[name])
    app.legal_name = " ".join((app.legal_name or "").split())
    app.full_clean()
    app.save()
    for kind, uploaded, info in uploads:
        _document_store(application=app, kind=kind, uploaded=uploaded, info=info)
    return app


def _submission_problems(app: KycApplication) -> list[str]:
    problems = []
    today = timezone.localdate()
    labels = {
        "legal_name": "legal name",
        "date_of_birth": "date of birth",
        "nationality": "nationality",
        "country_of_residence": "country of residence",
        "address": "address",
    }
    missing = [label for name, label in labels.items() if not getattr(app, name)]
    if missing:
        problems.append("Fill in your " + ", ".join(missing) + ".")
    if app.date_of_birth and app.date_of_birth > today.replace(year=today.year - 18):
        problems.append("You must be at least 18 years old.")
    if not app.self_certified:
        problems.append("Confirm the self-certification of your investor category and details.")
    have = set(app.documents.values_list("kind", flat=True))
    for kind in REQUIRED_DOCUMENTS:
        if kind not in have:
            problems.append(f"Upload your {KycDocument.Kind(kind).label.lower()}.")
    return problems


def _screen(app: KycApplication) -> None:
    entries = SanctionsEntry.objects.only("ent_num", "name", "normalized_name", "program", "is_alias").exclude(
        sdn_type__in=("vessel", "aircraft")
    )
    outcome = screen_name(app.legal_name, entries)
    app.screening_status = KycApplication.Screening.HIT if outcome.hit else KycApplication.Screening.CLEAR
    app.screening_score = outcome.best_score
    app.screening_matches = [m.as_dict() for m in outcome.matches]
    app.screened_at = timezone.now()


@transaction.atomic(durable=True)
def kyc_application_submit(*, application: KycApplication, user) -> KycApplication:
    """Send the application for review; the legal name is screened against the sanctions
    list now, and a hit flags it for manual (four-eyes) review."""
    return _kyc_submit_in_transaction(application=application, user=user)


def kyc_application_edit(
    *,
    user,
    application: KycApplication | None,
    data: dict,
    identity_document=None,
    proof_of_address=None,
    submit: bool = False,
) -> KycApplication:
    """One submit of the KYC form, in one transaction: start the application if needed,
    save the details and documents, and send it for review when asked. When the details
    are saved but the application is not complete enough to send, the draft is kept (the
    applicant does not upload again) and the reasons are raised after commit."""
    not_sendable = None
    with transaction.atomic(durable=True):
        application = application or _kyc_start_in_transaction(user=user)
        _kyc_save_in_transaction(
            application=application,
            user=user,
            data=data,
            identity_document=identity_document,
            proof_of_address=proof_of_address,
        )
        if submit:
            try:
                with transaction.atomic():  # a savepoint: a refused submit keeps the draft
                    application = _kyc_submit_in_transaction(application=application, user=user)
            except ValidationError as exc:
                not_sendable = exc
    if not_sendable is not None:
        raise not_sendable
    return application


def _kyc_submit_in_transaction(*, application: KycApplication, user) -> KycApplication:
    app = kyc_application_lock(pk=application.pk)
    if app.user_id != user.pk:
        raise PermissionDenied
    if not app.is_editable:
        raise ValidationError("This application has already been submitted.", code="not_editable")
    problems = _submission_problems(app)
    if problems:
        raise ValidationError(problems, code="incomplete")
    before = model_snapshot(app, ("status",))
    _screen(app)
    app.status = KycApplication.Status.SUBMITTED
    app.submitted_at = timezone.now()
    app.first_approval_by, app.first_approval_at, app.first_approval_reason = None, None, ""
    app.save()
    audit_record(actor=user, action="kyc.submitted", target=app, before=before, after=model_snapshot(app, ("status",)))
    audit_record(
        actor=None,
        action="kyc.screened",
        target=app,
        after={
            "screening_status": app.screening_status,
            "score": app.screening_score,
            "matches": app.screening_matches,
        },
    )
    return app


# Reviewer side ------------------------------------------------------------------------


def _check_reviewer(app: KycApplication, reviewer) -> None:
    if not (reviewer.is_active and reviewer.is_staff and reviewer.has_perm(REVIEW_PERMISSION)):
        raise PermissionDenied("You may not review KYC applications.")
    if reviewer.pk == app.user_id:
        raise ValidationError("Nobody may review their own KYC application.", code="own_application")
    if app.status != KycApplication.Status.SUBMITTED:
        raise ValidationError(
            f"Only submitted applications can be decided; this one is {app.get_status_display().lower()}.",
            code="not_submitted",
        )


@transaction.atomic(durable=True)
def kyc_application_approve(*, application: KycApplication, reviewer, reason: str = "") -> KycApplication:
    """Approve, or for a sanctions-flagged application record the first of the two
    approvals it needs. Final approval sets the expiry and creates the investor's
    custodial account (no on-chain transaction until one is needed)."""
    app = kyc_application_lock(pk=application.pk)
    _check_reviewer(app, reviewer)
    reason = (reason or "").strip()
    before = model_snapshot(app, DECISION_FIELDS)
    now = timezone.now()
    if app.is_flagged:
        if not reason:
            raise ValidationError("Explain why the sanctions match is a false positive.", code="reason_required")
        if app.first_approval_by_id is None:
            app.first_approval_by, app.first_approval_at, app.first_approval_reason = reviewer, now, reason
            app.save()
            audit_record(
                actor=reviewer,
                action="kyc.first_approval",
                target=app,
                before=before,
                after=model_snapshot(app, DECISION_FIELDS),
                reason=reason,
            )
            return app
        if app.first_approval_by_id == reviewer.pk:
            raise ValidationError(
                "This application matched a sanctions list: a second, different staff member must give the final approval.",
                code="four_eyes",
            )
        app.screening_status = KycApplication.Screening.CLEARED
    app.status = KycApplication.Status.APPROVED
    app.decided_by, app.decided_at, app.decision_reason = reviewer, now, reason
    app.expires_at = timezone.localdate(now) + timedelta(days=kyc_validity_days())
    app.save()

    account = investor_account_get_or_create(user=app.user)
    after = model_snapshot(app, DECISION_FIELDS) | {"custodial_address": account.address}
    audit_record(actor=reviewer, action="kyc.approved", target=app, before=before, after=after, reason=reason)
    notify(
        user=app.user,
        subject="Your identity is verified",
        body=f"Your KYC application was approved. You can now buy fractions in the offerings open to you. "
        f"Your verification is valid until {app.expires_at:%d %B %Y}.",
        path=reverse("marketplace:dashboard"),
    )
    return app


@transaction.atomic(durable=True)
def kyc_application_reject(*, application: KycApplication, reviewer, reason: str) -> KycApplication:
    return _decide(
        application=application,
        reviewer=reviewer,
        reason=reason,
        status=KycApplication.Status.REJECTED,
        action="kyc.rejected",
    )


@transaction.atomic(durable=True)
def kyc_application_request_info(*, application: KycApplication, reviewer, reason: str) -> KycApplication:
    """Send the application back to the applicant, who edits and submits it again."""
    return _decide(
        application=application,
        reviewer=reviewer,
        reason=reason,
        status=KycApplication.Status.NEEDS_INFO,
        action="kyc.info_requested",
    )


def _decide(*, application, reviewer, reason, status, action) -> KycApplication:
    app = kyc_application_lock(pk=application.pk)
    _check_reviewer(app, reviewer)
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError("Give a reason; the applicant will see it.", code="reason_required")
    before = model_snapshot(app, DECISION_FIELDS)
    app.status = status
    app.decided_by, app.decided_at, app.decision_reason = reviewer, timezone.now(), reason
    app.first_approval_by, app.first_approval_at, app.first_approval_reason = None, None, ""
    app.save()
    audit_record(
        actor=reviewer,
        action=action,
        target=app,
        before=before,
        after=model_snapshot(app, DECISION_FIELDS),
        reason=reason,
    )
    if status == KycApplication.Status.REJECTED:
        notify(
            user=app.user,
            subject="Your KYC application was not approved",
            body=f"We could not approve your identity verification:\n\n{reason}\n\nYou can apply again from your dashboard.",
            path=reverse("marketplace:dashboard"),
        )
    else:
        notify(
            user=app.user,
            subject="We need more information for your verification",
            body=f"Our compliance team needs more from you before deciding:\n\n{reason}\n\nUpdate your application and submit it again.",
            path=reverse("marketplace:dashboard"),
        )
    return app


# Renewal reminders ---------------------------------------------------------------------

KYC_REMINDER_DAYS = (30, 7, 0)  # days before expiry; 0 = the notice that it has expired


def kyc_expiry_reminders_send(*, today=None) -> int:
    """Mail investors whose verification expires within 30 and within 7 days, and once it
    has expired (exit-only from then on). Each mark is sent once per approval, however
    often this runs (a conditional update claims it first); nobody who has already
    started a renewal, or holds a newer approval, is reminded. Returns the mails queued."""
    today = today or timezone.localdate()
    S = KycApplication.Status
    newer = KycApplication.objects.filter(user=OuterRef("user"), created_at__gt=OuterRef("created_at"))
    candidates = (
        KycApplication.objects.filter(
            status=S.APPROVED,
            expires_at__lte=today + timedelta(days=max(KYC_REMINDER_DAYS)),
            expires_at__gte=today - timedelta(days=7),
        )
        .exclude(expiry_reminder_days=0)
        .filter(~Exists(newer.filter(status__in=[S.APPROVED, S.DRAFT, S.SUBMITTED, S.NEEDS_INFO])))
        .select_related("user")
    )
    sent = 0
    for app in candidates:
        days_left = (app.expires_at - today).days
        # Valid through expires_at: expired from the day after.
        mark = 0 if days_left < 0 else min(d for d in KYC_REMINDER_DAYS if d and days_left <= d)
        claimed = (
            KycApplication.objects.filter(pk=app.pk)
            .filter(Q(expiry_reminder_days__isnull=True) | Q(expiry_reminder_days__gt=mark))
            .update(expiry_reminder_days=mark)
        )
        if not claimed:
            continue
        if mark:
            notify(
                user=app.user,
                subject=f"Your verification expires in {days_left} day{'s' if days_left != 1 else ''}",
                body=f"Your identity verification is valid until {app.expires_at:%d %B %Y}. Renew it from your "
                f"dashboard to keep buying; after that date you can still sell what you hold (exit-only).",
                path=reverse("marketplace:dashboard"),
            )
        else:
            notify(
                user=app.user,
                subject="Your verification has expired",
                body=f"Your identity verification expired on {app.expires_at:%d %B %Y}. You can still sell what "
                f"you hold, but you cannot buy until you renew it from your dashboard.",
                path=reverse("marketplace:dashboard"),
            )
        sent += 1
    return sent


# Freezes ------------------------------------------------------------------------------


def _check_freezer(actor, user) -> None:
    if not (actor.is_active and actor.is_staff and actor.has_perm(FREEZE_PERMISSION)):
        raise PermissionDenied("You may not freeze or unfreeze accounts.")
    if actor.pk == user.pk:
        raise PermissionDenied("Nobody may freeze or unfreeze their own account.")


@transaction.atomic(durable=True)
def investor_freeze(*, user, actor, reason: str) -> InvestorProfile:
    _check_freezer(actor, user)
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError("Give a reason for the freeze.", code="reason_required")
    return _freeze_set(user=user, actor=actor, frozen=True, reason=reason)


@transaction.atomic(durable=True)
def investor_unfreeze(*, user, actor, reason: str = "") -> InvestorProfile:
    _check_freezer(actor, user)
    return _freeze_set(user=user, actor=actor, frozen=False, reason=reason)


def _freeze_set(*, user, actor, frozen: bool, reason: str) -> InvestorProfile:
    """Inside the caller's transaction, after _check_freezer."""
    InvestorProfile.objects.get_or_create(user=user)
    profile = investor_profile_lock(user=user)
    before = model_snapshot(profile, ("frozen", "frozen_reason"))
    profile.frozen, profile.frozen_reason = frozen, reason if frozen else ""
    profile.frozen_at, profile.frozen_by = (timezone.now(), actor) if frozen else (None, None)
    profile.save()
    audit_record(
        actor=actor,
        action="investor.frozen" if frozen else "investor.unfrozen",
        target=user,
        before=before,
        after=model_snapshot(profile, ("frozen", "frozen_reason")),
        reason=reason,
    )
    return profile


# Sanctions lists ----------------------------------------------------------------------


@transaction.atomic(durable=True)
def sanctions_list_replace(
    *, entries: list[ParsedEntry], source: str = "OFAC SDN", actor=None, rescreen: bool = True
) -> dict:
    """Replace the list from `source` with `entries` in one transaction, then screen
    again every approved or pending application against the new list: a new hit flags
    the person (and the eligibility engine stops their transfers) until reviewed."""
    if not entries:
        raise ValidationError("The list is empty; refusing to replace the current one with nothing.")
    now = timezone.now()
    deleted, _ = SanctionsEntry.objects.filter(source=source).delete()
    SanctionsEntry.objects.bulk_create(
        [
            SanctionsEntry(
                source=source,
                ent_num=e.ent_num,
                name=e.name[:400],
                normalized_name=name_normalize(e.name)[:400],
                is_alias=e.is_alias,
                sdn_type=e.sdn_type[:40],
                program=e.program[:200],
                remarks=e.remarks,
                imported_at=now,
            )
            for e in entries
        ],
        batch_size=2000,
    )
    new_hits = 0
    if rescreen:
        active = KycApplication.objects.filter(
            status__in=(KycApplication.Status.APPROVED, KycApplication.Status.SUBMITTED)
        ).exclude(screening_status=KycApplication.Screening.CLEARED)
        for pk in active.values_list("pk", flat=True):
            app = kyc_application_lock(pk=pk)
            was = app.screening_status
            _screen(app)
            app.save(
                update_fields=["screening_status", "screening_score", "screening_matches", "screened_at", "updated_at"]
            )
            if app.screening_status == KycApplication.Screening.HIT and was != KycApplication.Screening.HIT:
                new_hits += 1
                audit_record(
                    actor=None, action="kyc.rescreen_hit", target=app, after={"matches": app.screening_matches}
                )
    summary = {"source": source, "entries": len(entries), "replaced": deleted, "new_hits": new_hits}
    audit_record(actor=actor, action="sanctions.imported", after=summary)
    return summary
