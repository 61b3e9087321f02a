import pytest
from django.urls import reverse

from accounts.tests.factories import UserFactory
from compliance.models import KycApplication

from .factories import PDF_BYTES, PNG_BYTES, KycApplicationFactory, add_document, add_documents, upload

pytestmark = pytest.mark.django_db


def _details(**overrides):
    data = {
        "legal_name": "Jane Walker",
        "date_of_birth": "1990-01-01",
        "nationality": "FR",
        "country_of_residence": "FR",
        "address": "2 Rue X, Paris",
        "investor_category": "retail",
        "self_certified": "on",
    }
    return data | overrides


def test_submit_kyc_with_documents_through_the_form(client):
    user = UserFactory()
    client.force_login(user)

    response = client.post(
        reverse("compliance:kyc_edit"),
        _details(
            identity_document=upload("passport.pdf", PDF_BYTES),
            proof_of_address=upload("bill.png", PNG_BYTES),
            submit="1",
        ),
    )

    assert response.status_code == 302 and response["Location"] == reverse("marketplace:dashboard")
    app = KycApplication.objects.get(user=user)
    assert app.status == KycApplication.Status.SUBMITTED and app.documents.count() == 2
    assert "being reviewed" in client.get(reverse("marketplace:dashboard")).content.decode()


def test_the_old_dashboard_address_redirects_to_the_marketplace(client):
    client.force_login(UserFactory())

    response = client.get("/compliance/?from=mail")

    assert response.status_code == 301 and response["Location"] == reverse("marketplace:dashboard") + "?from=mail"


def test_save_draft_then_submit_reports_what_is_missing(client):
    client.force_login(UserFactory())

    client.post(reverse("compliance:kyc_edit"), _details(save="1"))
    response = client.post(reverse("compliance:kyc_edit"), _details(submit="1"))

    assert response.status_code == 200
    assert "Upload your identity document." in response.content.decode()


def test_upload_judged_by_content_not_name(client):
    client.force_login(UserFactory())

    response = client.post(
        reverse("compliance:kyc_edit"), _details(identity_document=upload("passport.pdf", b"<html>hi</html>"), save="1")
    )

    assert response.status_code == 200
    assert "not an accepted type" in response.content.decode()


# Permissions ---------------------------------------------------------------------------


def test_investor_cannot_read_another_investors_kyc_or_documents(client):
    other = KycApplicationFactory(submitted=True)
    doc = add_document(other)
    client.force_login(UserFactory())

    assert client.get(reverse("compliance:kyc_detail", args=[other.public_id])).status_code == 404
    assert client.get(reverse("compliance:kyc_document", args=[doc.public_id])).status_code == 404


def test_investor_reads_own_document_privately(client):
    app = KycApplicationFactory(submitted=True)
    doc = add_document(app)
    client.force_login(app.user)

    response = client.get(reverse("compliance:kyc_document", args=[doc.public_id]))

    assert response.status_code == 200 and b"".join(response.streaming_content) == PDF_BYTES
    assert response["Cache-Control"] == "private, no-store" and response["X-Content-Type-Options"] == "nosniff"


def test_anonymous_cannot_read_documents(client):
    doc = add_document(KycApplicationFactory())
    response = client.get(reverse("compliance:kyc_document", args=[doc.public_id]))
    assert response.status_code == 302


@pytest.mark.parametrize(
    "name", ["admin:compliance_kycapplication_changelist", "admin:compliance_auditentry_changelist"]
)
def test_non_staff_cannot_reach_the_review(client, name):
    client.force_login(UserFactory())
    response = client.get(reverse(name))
    assert response.status_code == 302 and "/backoffice/login/" in response["Location"]


def test_staff_without_the_compliance_role_cannot_review(client):
    app = KycApplicationFactory(submitted=True)
    doc = add_document(app)
    client.force_login(UserFactory(is_staff=True))

    assert client.get(reverse("admin:compliance_kycapplication_changelist")).status_code == 403
    assert client.get(reverse("admin:compliance_kycapplication_document", args=[doc.public_id])).status_code == 403
    response = client.post(reverse("admin:compliance_kycapplication_decide", args=[app.pk]), {"decision": "approve"})
    assert response.status_code == 403
    app.refresh_from_db()
    assert app.status == KycApplication.Status.SUBMITTED


def test_kyc_form_is_closed_while_under_review(client):
    app = KycApplicationFactory(submitted=True)
    add_documents(app)
    client.force_login(app.user)

    response = client.post(reverse("compliance:kyc_edit"), _details(legal_name="Changed", save="1"))

    assert response.status_code == 302
    app.refresh_from_db()
    assert app.legal_name != "Changed"
