"""Demo assets for `make run`: real generated documents, submitted by the demo issuer and
approved by the demo admin, so the worker mints them on devnet through the outbox.
Idempotent: assets that already exist are left alone."""

import datetime

from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management.base import BaseCommand, CommandError

from accounts.models import User
from assets import services
from assets.demo_documents import demo_photo, pdf_document, png_picture
from assets.forms import AssetImageUploadForm
from assets.models import Asset
from config.uploads import validate_upload

DEMO_ASSETS = [
    {
        "name": "Harbourfront Offices, Rotterdam",
        "category": "real_estate",
        "location": "Rotterdam, NL",
        "country": "NL",
        "description": "A six-storey office building on the Maas with 92% occupancy and leases averaging 7 years.",
        "valuation_minor": 1_850_000_000,
        "currency": "EUR",
        "total_fractions": 100_000,
        "unit_name": "HRBR",
        "asset_name": "Harbourfront Offices",
        "price_per_fraction_minor": 18_500,
        "fractions_for_sale": 60_000,
        "min_purchase": 1,
        "max_purchase": 5_000,
        "colours": ((120, 170, 220), (230, 240, 250)),
        "photos": [
            ("facade", "The six-storey facade seen from the Maas"),
            ("waterfront", "The building on the Rotterdam waterfront"),
            ("lobby", "Entrance lobby"),
        ],
    },
    {
        "name": "LBMA Gold Lot 4471",
        "category": "commodity",
        "location": "Zurich, CH",
        "country": "CH",
        "description": "Twelve 400 oz good-delivery gold bars held in an insured, audited vault.",
        "valuation_minor": 1_920_000_000,
        "currency": "USD",
        "total_fractions": 48_000,
        "unit_name": "GOLD4471",
        "asset_name": "LBMA Gold Lot 4471",
        "price_per_fraction_minor": 40_000,
        "fractions_for_sale": 48_000,
        "min_purchase": 1,
        "max_purchase": None,
        "colours": ((210, 170, 60), (250, 230, 160)),
    },
    {
        "name": "Blue Composition (1962)",
        "category": "art",
        "location": "Geneva, CH",
        "country": "CH",
        "description": "Oil on canvas, 120 × 90 cm, with full provenance since 1964.",
        "valuation_minor": 320_000_000,
        "currency": "USD",
        "total_fractions": 3_200,
        "unit_name": "BLUE62",
        "asset_name": "Blue Composition 1962",
        "price_per_fraction_minor": 100_000,
        "fractions_for_sale": 2_000,
        "min_purchase": 1,
        "max_purchase": 100,
        "colours": ((30, 60, 140), (120, 160, 230)),
    },
]


def _upload(name: str, content: bytes):
    upload = SimpleUploadedFile(name, content)
    return upload, validate_upload(upload)


class Command(BaseCommand):
    help = "Create, submit and approve the demo assets (minted by the worker on devnet)."

    def handle(self, *args, **options):
        issuer = User.objects.filter(email="issuer@demo.rwa").first()
        reviewer = User.objects.filter(email="admin@demo.rwa").first()
        if issuer is None or reviewer is None:
            raise CommandError("Run `manage.py seed_demo` first.")
        for spec in DEMO_ASSETS:
            spec = dict(spec)
            colours = spec.pop("colours")
            photos = spec.pop("photos", [])
            if Asset.objects.filter(issuer=issuer, name=spec["name"]).exists():
                continue
            asset = services.asset_create(issuer=issuer, fields={**spec, "valuation_date": datetime.date(2026, 9, 30)})
            documents = [
                (
                    "appraisal",
                    "Independent appraisal",
                    "appraisal.pdf",
                    pdf_document(
                        f"Appraisal: {asset.name}",
                        [
                            f"Valuation: {asset.valuation_minor // 100:,} {asset.currency}",
                            "Date: 30 September 2026",
                            "Method: comparable sales and income approach.",
                        ],
                    ),
                    True,
                ),
                (
                    "prospectus",
                    "Offering memorandum",
                    "prospectus.pdf",
                    pdf_document(
                        f"Offering memorandum: {asset.name}",
                        [
                            asset.description,
                            f"{asset.total_fractions:,} fractions.",
                            "Investments in private assets are illiquid.",
                        ],
                    ),
                    True,
                ),
                (
                    "title_deed",
                    "Title / custody certificate",
                    "title.pdf",
                    pdf_document(
                        f"Title certificate: {asset.name}", ["Registered owner: the issuing SPV.", "No encumbrances."]
                    ),
                    False,
                ),
                ("photo", "Photo", "photo.png", png_picture(160, 100, *colours), True),
            ]
            for kind, title, filename, content, public in documents:
                upload, validated = _upload(filename, content)
                services.document_add(
                    asset=asset,
                    actor=issuer,
                    kind=kind,
                    title=title,
                    upload=upload,
                    validated=validated,
                    public_to_investors=public,
                )
            for scene, caption in photos:
                # The issuer's path: the upload form decodes it, the service re-encodes it.
                form = AssetImageUploadForm(
                    data={"caption": caption},
                    files={"image": SimpleUploadedFile(f"{scene}.jpg", demo_photo(scene, colours))},
                )
                if not form.is_valid():
                    raise CommandError(f"Demo photo {scene}: {form.errors.as_text()}")
                services.asset_image_add(
                    asset=asset, actor=issuer, picture=form.cleaned_data["image"], caption=form.cleaned_data["caption"]
                )
            services.asset_submit(asset=asset, actor=issuer)
            services.asset_approve(asset=asset, reviewer=reviewer, comment="Demo approval.")
            self.stdout.write(f"  {asset.name}: approved, minting queued")
        self.stdout.write(self.style.SUCCESS(f"Demo assets: {Asset.objects.filter(issuer=issuer).count()}"))
