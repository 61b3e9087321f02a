import datetime
import hashlib

import factory
from django.core.files.base import ContentFile
from django.utils import timezone

from accounts.roles import COMPLIANCE_OFFICER, INVESTOR
from accounts.services import user_add_role
from accounts.tests.factories import UserFactory
from compliance.models import KycApplication, KycDocument

# Smallest files that pass content sniffing.
PDF_BYTES = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PNG_BYTES = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


class OfficerFactory(UserFactory):
    """Staff with the compliance officer role."""

    is_staff = True

    @factory.post_generation
    def roles(self, create, extracted, **kwargs):
        if create:
            for role in (COMPLIANCE_OFFICER, INVESTOR) if extracted is None else extracted:
                user_add_role(user=self, role=role)


class KycApplicationFactory(factory.django.DjangoModelFactory):
    """A draft with complete details; traits `submitted`, `approved`, `flagged`."""

    class Meta:
        model = KycApplication

    user = factory.SubFactory(UserFactory)
    legal_name = factory.Faker("name")
    date_of_birth = datetime.date(1984, 5, 17)
    nationality = "GB"
    country_of_residence = "GB"
    address = "1 High Street, London"
    investor_category = KycApplication.Category.RETAIL
    self_certified = True

    class Params:
        submitted = factory.Trait(
            status=KycApplication.Status.SUBMITTED,
            submitted_at=factory.LazyFunction(timezone.now),
            screening_status=KycApplication.Screening.CLEAR,
            screened_at=factory.LazyFunction(timezone.now),
        )
        approved = factory.Trait(
            status=KycApplication.Status.APPROVED,
            submitted_at=factory.LazyFunction(timezone.now),
            screening_status=KycApplication.Screening.CLEAR,
            decided_at=factory.LazyFunction(timezone.now),
            expires_at=factory.LazyFunction(lambda: timezone.localdate() + datetime.timedelta(days=365)),
        )
        flagged = factory.Trait(
            status=KycApplication.Status.SUBMITTED,
            submitted_at=factory.LazyFunction(timezone.now),
            screening_status=KycApplication.Screening.HIT,
            screening_score=95.0,
            screening_matches=[
                {
                    "ent_num": 90001,
                    "name": "DRAKOV, Viktor Ivanovich",
                    "program": "DEMO-FICTION",
                    "score": 95.0,
                    "is_alias": False,
                }
            ],
        )


def add_document(application, kind=KycDocument.Kind.IDENTITY, content: bytes = PDF_BYTES) -> KycDocument:
    doc = KycDocument(
        application=application,
        kind=kind,
        original_name=f"{kind}.pdf",
        content_type="application/pdf" if content.startswith(b"%PDF") else "image/png",
        size=len(content),
        sha256=hashlib.sha256(content).hexdigest(),
    )
    doc.file.save("doc", ContentFile(content), save=False)
    doc.save()
    return doc


def add_documents(application) -> None:
    add_document(application, KycDocument.Kind.IDENTITY)
    add_document(application, KycDocument.Kind.PROOF_OF_ADDRESS, PNG_BYTES)


def upload(name: str, content: bytes):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, content, content_type="application/pdf")
