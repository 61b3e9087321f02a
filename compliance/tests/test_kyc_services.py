import datetime

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from accounts.tests.factories import UserFactory
from chain.models import ChainAccount
from compliance.models import AuditEntry, KycApplication, KycDocument
from compliance.services import (
    investor_freeze,
    investor_unfreeze,
    kyc_application_approve,
    kyc_application_reject,
    kyc_application_request_info,
    kyc_application_save,
    kyc_application_start,
    kyc_application_submit,
    kyc_can_start_new,
)

from .factories import PDF_BYTES, PNG_BYTES, KycApplicationFactory, OfficerFactory, add_documents, upload

pytestmark = pytest.mark.django_db


def _actions(app):
    return list(
        AuditEntry.objects.filter(target_type="compliance.KycApplication", target_id=str(app.pk))
        .order_by("seq")
        .values_list("action", flat=True)
    )


def test_start_save_with_documents_and_submit(sample_sanctions):
    user = UserFactory()
    app = kyc_application_start(user=user)

    kyc_application_save(
        application=app,
        user=user,
        data={
            "legal_name": "  Jane   Walker ",
            "date_of_birth": datetime.date(1990, 1, 1),
            "nationality": "FR",
            "country_of_residence": "FR",
            "address": "2 Rue X, Paris",
            "investor_category": "retail",
            "self_certified": True,
        },
        identity_document=upload("passport.pdf", PDF_BYTES),
        proof_of_address=upload("bill.png", PNG_BYTES),
    )
    app = kyc_application_submit(application=app, user=user)

    assert app.status == KycApplication.Status.SUBMITTED and app.legal_name == "Jane Walker"
    assert app.screening_status == KycApplication.Screening.CLEAR and app.screened_at
    docs = {d.kind: d for d in app.documents.all()}
    assert docs["identity"].content_type == "application/pdf" and docs["proof_of_address"].original_name == "bill.png"
    assert _actions(app) == ["kyc.started", "kyc.submitted", "kyc.screened"]


def test_a_file_whose_content_is_not_a_document_is_refused_and_nothing_is_saved():
    app = KycApplicationFactory(legal_name="Before")

    with pytest.raises(ValidationError) as exc:
        kyc_application_save(
            application=app,
            user=app.user,
            data={"legal_name": "After"},
            identity_document=upload("passport.pdf", b"MZ\x90\x00 not a pdf at all"),
        )

    assert "identity_document" in exc.value.message_dict
    app.refresh_from_db()
    assert app.legal_name == "Before" and not app.documents.exists()


def test_uploading_again_replaces_the_document_of_that_kind():
    app = KycApplicationFactory()
    kyc_application_save(application=app, user=app.user, data={}, identity_document=upload("a.pdf", PDF_BYTES))
    kyc_application_save(application=app, user=app.user, data={}, identity_document=upload("b.png", PNG_BYTES))

    assert list(app.documents.values_list("original_name", flat=True)) == ["b.png"]


def test_submission_lists_everything_missing():
    app = KycApplicationFactory(
        legal_name="", self_certified=False, date_of_birth=timezone.localdate() - datetime.timedelta(days=365 * 10)
    )

    with pytest.raises(ValidationError) as exc:
        kyc_application_submit(application=app, user=app.user)

    text = " ".join(exc.value.messages)
    assert "legal name" in text and "18 years" in text and "self-certification" in text
    assert "identity document" in text and "proof of address" in text


def test_only_the_applicant_edits_or_submits():
    app = KycApplicationFactory()
    with pytest.raises(PermissionDenied):
        kyc_application_save(application=app, user=UserFactory(), data={"legal_name": "Mallory"})
    with pytest.raises(PermissionDenied):
        kyc_application_submit(application=app, user=UserFactory())


def test_a_sanctioned_name_is_flagged_with_the_matched_entry_and_score(sample_sanctions):
    app = KycApplicationFactory(legal_name="Viktor Drakov")
    add_documents(app)

    app = kyc_application_submit(application=app, user=app.user)

    assert app.status == KycApplication.Status.SUBMITTED and app.is_flagged
    assert app.screening_matches[0]["ent_num"] == 90001 and app.screening_matches[0]["score"] >= 88
    assert app.screening_score >= 88


def test_approval_sets_expiry_and_creates_the_custodial_account():
    officer = OfficerFactory()
    app = KycApplicationFactory(submitted=True)

    app = kyc_application_approve(application=app, reviewer=officer)

    assert app.status == KycApplication.Status.APPROVED and app.decided_by == officer
    assert app.expires_at == timezone.localdate() + datetime.timedelta(days=365)
    account = ChainAccount.objects.get(user=app.user)
    entry = AuditEntry.objects.filter(action="kyc.approved").latest("seq")
    assert entry.actor_id == officer.pk and entry.after["custodial_address"] == account.address
    assert entry.before["status"] == "submitted" and entry.after["status"] == "approved"


def test_flagged_application_needs_two_different_reviewers():
    first, second = OfficerFactory(), OfficerFactory()
    app = KycApplicationFactory(flagged=True)

    with pytest.raises(ValidationError, match="false positive"):
        kyc_application_approve(application=app, reviewer=first)
    app = kyc_application_approve(application=app, reviewer=first, reason="Different date of birth")
    assert app.status == KycApplication.Status.SUBMITTED and app.first_approval_by == first
    assert not ChainAccount.objects.filter(user=app.user).exists()

    with pytest.raises(ValidationError, match="second, different staff member"):
        kyc_application_approve(application=app, reviewer=first, reason="again")

    app = kyc_application_approve(application=app, reviewer=second, reason="Agree: DOB differs")
    assert app.status == KycApplication.Status.APPROVED and app.decided_by == second
    assert app.screening_status == KycApplication.Screening.CLEARED
    assert _actions(app)[-2:] == ["kyc.first_approval", "kyc.approved"]


def test_reviewers_need_the_permission_and_cannot_review_themselves():
    app = KycApplicationFactory(submitted=True)
    with pytest.raises(PermissionDenied):
        kyc_application_approve(application=app, reviewer=UserFactory(is_staff=True))
    own = KycApplicationFactory(submitted=True, user=OfficerFactory())
    with pytest.raises(ValidationError, match="own"):
        kyc_application_approve(application=own, reviewer=own.user)


def test_only_submitted_applications_can_be_decided():
    with pytest.raises(ValidationError, match="Only submitted"):
        kyc_application_approve(application=KycApplicationFactory(), reviewer=OfficerFactory())


@pytest.mark.parametrize(
    ("service", "status", "action"),
    [
        (kyc_application_reject, KycApplication.Status.REJECTED, "kyc.rejected"),
        (kyc_application_request_info, KycApplication.Status.NEEDS_INFO, "kyc.info_requested"),
    ],
)
def test_reject_and_request_info_need_a_reason(service, status, action):
    officer = OfficerFactory()
    app = KycApplicationFactory(submitted=True)
    with pytest.raises(ValidationError, match="reason"):
        service(application=app, reviewer=officer, reason=" ")

    app = service(application=app, reviewer=officer, reason="Document is blurred")

    assert app.status == status and app.decision_reason == "Document is blurred"
    entry = AuditEntry.objects.latest("seq")
    assert (entry.action, entry.reason, entry.actor_id) == (action, "Document is blurred", officer.pk)


def test_needs_info_goes_back_to_the_applicant_and_can_be_resubmitted():
    app = KycApplicationFactory(submitted=True)
    add_documents(app)
    app = kyc_application_request_info(application=app, reviewer=OfficerFactory(), reason="Newer bill please")

    assert kyc_application_start(user=app.user) == app
    kyc_application_save(application=app, user=app.user, data={}, proof_of_address=upload("new.pdf", PDF_BYTES))
    app = kyc_application_submit(application=app, user=app.user)

    assert app.status == KycApplication.Status.SUBMITTED
    assert app.documents.get(kind=KycDocument.Kind.PROOF_OF_ADDRESS).original_name == "new.pdf"


def test_renewal_is_allowed_only_near_expiry():
    app = KycApplicationFactory(approved=True)
    assert not kyc_can_start_new(user=app.user)
    with pytest.raises(ValidationError):
        kyc_application_start(user=app.user)

    KycApplication.objects.filter(pk=app.pk).update(expires_at=timezone.localdate() + datetime.timedelta(days=30))
    renewal = kyc_application_start(user=app.user)

    assert renewal.pk != app.pk and renewal.status == KycApplication.Status.DRAFT
    assert renewal.legal_name == app.legal_name and not renewal.self_certified


def test_freeze_and_unfreeze_are_recorded():
    officer, investor = OfficerFactory(), UserFactory()

    profile = investor_freeze(user=investor, actor=officer, reason="Suspicious activity")
    assert profile.frozen and profile.frozen_by == officer
    profile = investor_unfreeze(user=investor, actor=officer, reason="Resolved")
    assert not profile.frozen

    entries = list(
        AuditEntry.objects.filter(target_id=str(investor.pk), action__startswith="investor.").order_by("seq")
    )
    assert [(e.action, e.after["frozen"]) for e in entries] == [("investor.frozen", True), ("investor.unfrozen", False)]
    with pytest.raises(PermissionDenied):
        investor_freeze(user=investor, actor=UserFactory(), reason="x")


def test_renewal_reminders_go_out_once_per_mark_and_not_to_someone_renewing(django_capture_on_commit_callbacks):
    import datetime

    from django.core import mail

    from compliance.services import kyc_expiry_reminders_send

    today = datetime.date(2027, 3, 1)
    app = KycApplicationFactory(approved=True)
    renewing = KycApplicationFactory(approved=True)
    KycApplication.objects.filter(pk__in=[app.pk, renewing.pk]).update(expires_at=today + datetime.timedelta(days=40))
    KycApplicationFactory(user=renewing.user, submitted=True)  # a renewal under review

    def run(days_before_expiry):
        KycApplication.objects.filter(pk__in=[app.pk, renewing.pk]).update(
            expires_at=today + datetime.timedelta(days=days_before_expiry)
        )
        mail.outbox.clear()
        with django_capture_on_commit_callbacks(execute=True):
            sent = kyc_expiry_reminders_send(today=today)
        assert sent == len(mail.outbox)
        return [(m.to[0], m.subject.removeprefix("[RWA Marketplace] ")) for m in mail.outbox]

    email = app.user.email
    assert run(40) == []
    assert run(25) == [(email, "Your verification expires in 25 days")]
    assert run(25) == []  # the 30-day mark went out already
    assert run(6) == [(email, "Your verification expires in 6 days")]
    assert run(0) == []  # still valid today
    assert run(-1) == [(email, "Your verification has expired")]
    assert run(-2) == []
    assert KycApplication.objects.get(pk=renewing.pk).expiry_reminder_days is None


# One submit of the form is one transaction (kyc_application_edit).

_DETAILS = {
    "legal_name": "Jane Walker",
    "date_of_birth": datetime.date(1990, 1, 1),
    "nationality": "FR",
    "country_of_residence": "FR",
    "address": "2 Rue X, Paris",
    "investor_category": "retail",
    "self_certified": True,
}


def test_a_refused_first_save_leaves_no_empty_draft_behind():
    from compliance.services import kyc_application_edit

    user = UserFactory()

    with pytest.raises(ValidationError):
        kyc_application_edit(
            user=user,
            application=None,
            data=_DETAILS,
            identity_document=upload("passport.pdf", b"MZ\x90\x00 not a pdf at all"),
        )

    assert not KycApplication.objects.filter(user=user).exists()
    assert not AuditEntry.objects.filter(action="kyc.started", actor_id=user.pk).exists()


def test_an_incomplete_submit_keeps_the_saved_draft_and_says_what_is_missing():
    from compliance.services import kyc_application_edit

    user = UserFactory()

    with pytest.raises(ValidationError) as exc:
        kyc_application_edit(
            user=user, application=None, data=_DETAILS, submit=True, identity_document=upload("passport.pdf", PDF_BYTES)
        )

    assert "Upload your proof of address." in exc.value.messages
    app = KycApplication.objects.get(user=user)
    assert app.status == KycApplication.Status.DRAFT and app.legal_name == "Jane Walker"
    assert [d.kind for d in app.documents.all()] == ["identity"]
    assert _actions(app) == ["kyc.started"]


def test_edit_and_submit_in_one_go(sample_sanctions):
    from compliance.services import kyc_application_edit

    user = UserFactory()

    app = kyc_application_edit(
        user=user,
        application=None,
        data=_DETAILS,
        submit=True,
        identity_document=upload("passport.pdf", PDF_BYTES),
        proof_of_address=upload("bill.png", PNG_BYTES),
    )

    assert app.status == KycApplication.Status.SUBMITTED
    assert _actions(app) == ["kyc.started", "kyc.submitted", "kyc.screened"]
