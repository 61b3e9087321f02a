import pytest
from django.contrib.admin.models import LogEntry
from django.urls import reverse

from accounts.tests.factories import UserFactory
from compliance.models import AuditEntry, InvestorProfile, KycApplication

from .factories import PDF_BYTES, KycApplicationFactory, OfficerFactory, add_document

pytestmark = pytest.mark.django_db


def _decide(client, app, decision, reason=""):
    return client.post(
        reverse("admin:compliance_kycapplication_decide", args=[app.pk]),
        {"decision": decision, "reason": reason},
        follow=True,
    )


def test_queue_lists_waiting_and_flagged_applications(client):
    waiting = KycApplicationFactory(submitted=True, legal_name="Wanda Waiting")
    flagged = KycApplicationFactory(flagged=True, legal_name="Viktor Drakov")
    KycApplicationFactory(legal_name="Dora Draft")
    client.force_login(OfficerFactory())

    html = client.get(reverse("admin:compliance_kycapplication_changelist") + "?queue=waiting").content.decode()
    assert waiting.legal_name in html and flagged.legal_name in html and "Dora Draft" not in html
    html = client.get(reverse("admin:compliance_kycapplication_changelist") + "?queue=flagged").content.decode()
    assert flagged.legal_name in html and waiting.legal_name not in html


def test_review_page_shows_documents_screening_and_decision_form(client):
    app = KycApplicationFactory(flagged=True)
    doc = add_document(app)
    client.force_login(OfficerFactory())

    html = client.get(reverse("admin:compliance_kycapplication_change", args=[app.pk])).content.decode()

    assert "DRAKOV, Viktor Ivanovich" in html and 'id="screening-flag"' in html
    assert reverse("admin:compliance_kycapplication_document", args=[doc.public_id]) in html
    assert "Give first approval" in html
    response = client.get(reverse("admin:compliance_kycapplication_document", args=[doc.public_id]))
    assert b"".join(response.streaming_content) == PDF_BYTES


def test_approve_in_admin(client):
    officer = OfficerFactory()
    app = KycApplicationFactory(submitted=True)
    client.force_login(officer)

    response = _decide(client, app, "approve")

    assert "was approved" in response.content.decode()
    app.refresh_from_db()
    assert app.status == KycApplication.Status.APPROVED
    assert LogEntry.objects.filter(object_id=str(app.pk), user=officer).exists()
    assert AuditEntry.objects.filter(action="admin.changed", actor_id=officer.pk).exists()


def test_four_eyes_in_admin(client):
    first, second = OfficerFactory(), OfficerFactory()
    app = KycApplicationFactory(flagged=True)
    client.force_login(first)

    assert "First approval recorded" in _decide(client, app, "approve", "DOB differs").content.decode()
    assert "second, different staff member" in _decide(client, app, "approve", "DOB differs").content.decode()
    app.refresh_from_db()
    assert app.status == KycApplication.Status.SUBMITTED

    client.force_login(second)
    assert (
        "Give second approval"
        in client.get(reverse("admin:compliance_kycapplication_change", args=[app.pk])).content.decode()
    )
    _decide(client, app, "approve", "Agreed")
    app.refresh_from_db()
    assert app.status == KycApplication.Status.APPROVED and app.first_approval_by == first and app.decided_by == second


def test_reject_without_reason_is_refused(client):
    app = KycApplicationFactory(submitted=True)
    client.force_login(OfficerFactory())

    assert "Give a reason" in _decide(client, app, "reject").content.decode()
    _decide(client, app, "reject", "Forged document")
    app.refresh_from_db()
    assert app.status == KycApplication.Status.REJECTED


def test_applications_and_audit_entries_cannot_be_edited_or_deleted_in_admin(client):
    app = KycApplicationFactory(submitted=True)
    client.force_login(UserFactory(is_staff=True, is_superuser=True))

    response = client.post(reverse("admin:compliance_kycapplication_change", args=[app.pk]), {"legal_name": "X"})
    assert response.status_code == 403
    entry = AuditEntry.objects.latest("seq")
    assert (
        client.post(reverse("admin:compliance_auditentry_delete", args=[entry.pk]), {"post": "yes"}).status_code == 403
    )


def test_freeze_through_admin_is_audited(client):
    officer, investor = OfficerFactory(), UserFactory()
    client.force_login(officer)

    response = client.post(
        reverse("admin:compliance_investorprofile_add"),
        {"user": investor.pk, "frozen": "on", "frozen_reason": "AML alert"},
    )

    assert response.status_code == 302
    assert InvestorProfile.objects.get(user=investor).frozen
    entry = AuditEntry.objects.get(action="investor.frozen")
    assert entry.actor_id == officer.pk and entry.reason == "AML alert"
