"""Security audit of the compliance app's views, beside test_views.py: the investor-facing
KYC pages serve only the applicant (staff review in the back office, never here), need a
login, and change nothing without POST and a CSRF token."""

import pytest
from django.test import Client
from django.urls import reverse

from accounts.tests.factories import UserFactory
from compliance.models import KycApplication

from .factories import KycApplicationFactory, OfficerFactory, add_document
from .test_views import _details

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "staff",
    [lambda: OfficerFactory(), lambda: UserFactory(is_staff=True, is_superuser=True)],
    ids=["compliance officer", "superuser"],
)
def test_staff_do_not_read_an_applicants_kyc_through_the_investor_pages(client, staff):
    app = KycApplicationFactory(submitted=True)
    urls = [
        reverse("compliance:kyc_detail", args=[app.public_id]),
        reverse("compliance:kyc_document", args=[add_document(app).public_id]),
    ]
    client.force_login(staff())
    assert [client.get(url).status_code for url in urls] == [404, 404]


def test_applicant_reads_their_own_kyc_details(client):
    app = KycApplicationFactory(submitted=True, legal_name="Ada Own")
    client.force_login(app.user)
    response = client.get(reverse("compliance:kyc_detail", args=[app.public_id]))
    assert response.status_code == 200 and "Ada Own" in response.content.decode()


@pytest.mark.parametrize("name", ["kyc_edit", "kyc_detail"])
def test_anonymous_is_sent_to_sign_in(client, name):
    app = KycApplicationFactory()
    url = reverse(f"compliance:{name}", args=[app.public_id] if name == "kyc_detail" else [])
    response = client.get(url)
    assert response.status_code == 302 and response["Location"].startswith(reverse("account_login"))


def test_anonymous_post_saves_no_kyc(client):
    response = client.post(reverse("compliance:kyc_edit"), _details(save="1"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("account_login"))
    assert not KycApplication.objects.exists()


def test_kyc_form_refuses_a_post_without_csrf_token():
    user = UserFactory()
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    assert client.post(reverse("compliance:kyc_edit"), _details(save="1")).status_code == 403
    assert not KycApplication.objects.filter(user=user).exists()


def test_read_only_pages_refuse_other_methods(client):
    app = KycApplicationFactory()
    doc = add_document(app)
    client.force_login(app.user)
    assert client.post(reverse("compliance:kyc_detail", args=[app.public_id])).status_code == 405
    assert client.post(reverse("compliance:kyc_document", args=[doc.public_id])).status_code == 405
    assert client.delete(reverse("compliance:kyc_edit")).status_code == 405


def test_non_staff_cannot_open_a_kyc_document_in_the_back_office(client):
    doc = add_document(KycApplicationFactory(submitted=True))
    client.force_login(UserFactory())
    response = client.get(reverse("admin:compliance_kycapplication_document", args=[doc.public_id]))
    assert response.status_code == 302 and "/backoffice/login/" in response["Location"]
