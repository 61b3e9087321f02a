import datetime
import hashlib
from io import BytesIO

import factory
from django.core.files.base import ContentFile
from PIL import Image

from accounts.roles import INVESTOR, ISSUER
from accounts.services import user_add_role
from accounts.tests.factories import UserFactory
from assets.models import Asset, AssetDocument, AssetImage

# Smallest valid files of each accepted kind, by their magic bytes.
PDF_BYTES = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PNG_BYTES = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


class IssuerFactory(UserFactory):
    @factory.post_generation
    def roles(self, create, extracted, **kwargs):
        if create:
            for role in (INVESTOR, ISSUER) if extracted is None else extracted:
                user_add_role(user=self, role=role)


class AssetFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Asset

    issuer = factory.SubFactory(IssuerFactory)
    name = factory.Sequence(lambda n: f"Harbour Building {n}")
    category = Asset.Category.REAL_ESTATE
    description = "A six-storey office building with long leases."
    location = "Rotterdam, NL"
    country = "NL"
    valuation_minor = 250_000_000
    valuation_date = datetime.date(2026, 6, 30)
    currency = "EUR"
    total_fractions = 10_000
    unit_name = factory.Sequence(lambda n: f"HB{n % 100000}")
    asset_name = factory.Sequence(lambda n: f"Harbour Building {n}")
    price_per_fraction_minor = 25_000
    fractions_for_sale = 8_000


def make_document(
    asset,
    *,
    content: bytes | None = None,
    kind=AssetDocument.Kind.APPRAISAL,
    title: str = "Appraisal",
    public_to_investors: bool = False,
) -> AssetDocument:
    """A stored data-room document whose recorded hash and size match its file."""
    content = content if content is not None else PDF_BYTES + f"% {title} {asset.pk}\n".encode()
    content_type = "image/png" if content.startswith(b"\x89PNG") else "application/pdf"
    document = AssetDocument(
        asset=asset,
        kind=kind,
        title=title,
        original_name=f"{title}.pdf",
        content_type=content_type,
        size=len(content),
        sha256=hashlib.sha256(content).hexdigest(),
        public_to_investors=public_to_investors,
        uploaded_by=asset.issuer,
    )
    document.file.save("doc", ContentFile(content), save=False)
    document.save()
    return document


def image_bytes(size=(1200, 800), fmt="JPEG", colour=(40, 90, 160), **save) -> bytes:
    """A real image of that size and format (Pillow), e.g. exif=... to carry metadata."""
    buffer = BytesIO()
    Image.new("RGB", size, colour).save(buffer, fmt, **save)
    return buffer.getvalue()


def make_image(asset, *, caption: str = "", size=(800, 600)) -> AssetImage:
    """A stored gallery photo, whatever the asset's status (the upload path needs a draft)."""
    position = asset.images.count() + 1
    thumbnail = (400, size[1] * 400 // size[0])
    image = AssetImage(
        asset=asset,
        content_type="image/jpeg",
        width=size[0],
        height=size[1],
        size=0,
        thumbnail_width=thumbnail[0],
        thumbnail_height=thumbnail[1],
        caption=caption,
        position=position,
        uploaded_by=asset.issuer,
    )
    data = image_bytes(size)
    image.size = len(data)
    image.image.save("image", ContentFile(data), save=False)
    image.thumbnail.save("thumbnail", ContentFile(image_bytes(thumbnail, "WEBP")), save=False)
    image.save()
    return image
